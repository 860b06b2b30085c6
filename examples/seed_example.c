/*
 * The example of Brython's browser.websocket documentation, in C:
 * open a socket, bind open/message/close, send what the user typed, close.
 *
 *   seed_example URL [MESSAGE...]
 *
 * Sends each MESSAGE (or "Hello from wsembed" when none is given), prints
 * each message received, then closes. Build:
 *   cc -Iinclude examples/seed_example.c -Ltarget/release -lwsembed -lpthread
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "wsembed.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int opened, received, closed, failed;

static void on_open(ws_handle ws, const ws_event *evt, void *userdata) {
    (void)ws; (void)evt; (void)userdata;
    printf("Connection open\n");
    pthread_mutex_lock(&lock);
    opened = 1;
    pthread_cond_signal(&changed);
    pthread_mutex_unlock(&lock);
}

static void on_message(ws_handle ws, const ws_event *evt, void *userdata) {
    (void)ws; (void)userdata;
    /* Text messages are NUL-terminated; evt->len counts the bytes. */
    if (evt->is_binary)
        printf("Message received: %zu bytes of binary\n", evt->len);
    else
        printf("Message received: %s\n", (const char *)evt->data);
    pthread_mutex_lock(&lock);
    received++;
    pthread_cond_signal(&changed);
    pthread_mutex_unlock(&lock);
}

static void on_error(ws_handle ws, const ws_event *evt, void *userdata) {
    (void)ws; (void)userdata;
    printf("Error: %s (%s)\n", evt->reason, ws_strerror(evt->error_code));
    pthread_mutex_lock(&lock);
    failed = 1;
    pthread_mutex_unlock(&lock);
}

static void on_close(ws_handle ws, const ws_event *evt, void *userdata) {
    (void)ws; (void)userdata;
    printf("Connection closed (code %u%s%s)\n", evt->code,
           evt->was_clean ? ", clean" : ", not clean", evt->reason[0] ? evt->reason : "");
    pthread_mutex_lock(&lock);
    closed = 1;
    pthread_cond_signal(&changed);
    pthread_mutex_unlock(&lock);
}

int main(int argc, char **argv) {
    const char *fallback[] = {"Hello from wsembed"};
    const char **messages = argc > 2 ? (const char **)argv + 2 : fallback;
    int count = argc > 2 ? argc - 2 : 1;
    int i, ok;
    ws_handle ws;

    if (argc < 2) {
        fprintf(stderr, "usage: %s ws://host:port/ [message...]\n", argv[0]);
        return 2;
    }
    ws = ws_open(argv[1]);
    if (ws == 0) {
        fprintf(stderr, "cannot open %s: %s\n", argv[1], ws_last_error());
        return 1;
    }
    ws_bind(ws, WS_EVENT_OPEN, on_open, NULL);
    ws_bind(ws, WS_EVENT_MESSAGE, on_message, NULL);
    ws_bind(ws, WS_EVENT_ERROR, on_error, NULL);
    ws_bind(ws, WS_EVENT_CLOSE, on_close, NULL);

    /* Wait for the socket to open (or fail) before sending. */
    pthread_mutex_lock(&lock);
    while (!opened && !closed)
        pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);

    for (i = 0; i < count; i++) {
        int status = ws_send(ws, messages[i]);
        if (status != WS_OK)
            fprintf(stderr, "send failed: %s\n", ws_last_error());
    }
    pthread_mutex_lock(&lock);
    while (received < count && !closed)
        pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);

    ws_close(ws);
    pthread_mutex_lock(&lock);
    while (!closed)
        pthread_cond_wait(&changed, &lock);
    ok = received == count && !failed;
    pthread_mutex_unlock(&lock);
    ws_free(ws);
    ws_shutdown();
    return ok ? 0 : 1;
}
