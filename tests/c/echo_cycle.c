/*
 * The open / send / echo / close cycle, written only from include/wsembed.h
 * and API.md. Usage: echo_cycle URL [CA_FILE]
 * (CA_FILE: extra trust roots for a wss:// server with a private CA.)
 * Exits 0 when every step behaved as documented; prints what went wrong
 * otherwise.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wsembed.h"

struct state {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int opened;
    int messages;
    int errors;
    int closes;
    uint16_t close_code;
    bool was_clean;
    char last_text[64];
    unsigned char last_binary[8];
    size_t last_binary_len;
    int finalized;
};

static int fail(const char *what) {
    printf("FAIL: %s (last error: %s)\n", what, ws_last_error());
    return 1;
}

static void on_event(ws_handle socket, const ws_event *event, void *userdata) {
    struct state *st = userdata;
    (void)socket;
    pthread_mutex_lock(&st->lock);
    switch (event->kind) {
    case WS_EVENT_OPEN:
        st->opened++;
        break;
    case WS_EVENT_MESSAGE:
        st->messages++;
        if (event->is_binary) {
            st->last_binary_len = event->len;
            if (event->len <= sizeof st->last_binary)
                memcpy(st->last_binary, event->data, event->len);
        } else {
            /* Text is NUL-terminated: usable as a C string. */
            snprintf(st->last_text, sizeof st->last_text, "%s", (const char *)event->data);
        }
        break;
    case WS_EVENT_ERROR:
        st->errors++;
        printf("error event %d: %s\n", event->error_code, event->reason);
        break;
    case WS_EVENT_CLOSE:
        st->closes++;
        st->close_code = event->code;
        st->was_clean = event->was_clean;
        break;
    default:
        break;
    }
    pthread_cond_broadcast(&st->changed);
    pthread_mutex_unlock(&st->lock);
}

static void on_free(void *userdata) {
    struct state *st = userdata;
    pthread_mutex_lock(&st->lock);
    st->finalized++;
    pthread_mutex_unlock(&st->lock);
}

/* Waits until *field reaches want, for at most 20 s. */
static int wait_for(struct state *st, const int *field, int want) {
    struct timespec deadline;
    int ok;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 20;
    pthread_mutex_lock(&st->lock);
    while (*field < want && st->closes == 0) {
        if (pthread_cond_timedwait(&st->changed, &st->lock, &deadline) != 0)
            break;
    }
    ok = *field >= want;
    pthread_mutex_unlock(&st->lock);
    return ok;
}

int main(int argc, char **argv) {
    static struct state st;
    ws_handle ws;
    char buf[128];
    const unsigned char bytes[4] = {0, 1, 254, 255};
    ws_event_kind kinds[4] = {WS_EVENT_OPEN, WS_EVENT_MESSAGE, WS_EVENT_ERROR, WS_EVENT_CLOSE};
    int i;

    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: %s URL [CA_FILE]\n", argv[0]);
        return 2;
    }
    pthread_mutex_init(&st.lock, NULL);
    pthread_cond_init(&st.changed, NULL);

    /* Synchronous errors come back at once. */
    if (ws_open("http://127.0.0.1/") != 0 || strlen(ws_last_error()) == 0)
        return fail("an http:// URL must be refused");
    if (ws_send(0, "x") != WS_ERR_INVALID_HANDLE)
        return fail("handle 0 must be invalid");
    if (strcmp(ws_version(), WSEMBED_VERSION) != 0)
        return fail("header and library versions differ");

    if (argc == 3) {
        ws_options *options = ws_options_new();
        if (options == NULL || ws_options_set_ca_file(options, argv[2]) != WS_OK)
            return fail("ws_options_set_ca_file");
        ws = ws_open_ex(argv[1], options);
        ws_options_free(options); /* ws_open_ex copied what it needs */
    } else {
        ws = ws_open(argv[1]);
    }
    if (ws == 0)
        return fail("ws_open");
    for (i = 0; i < 4; i++) {
        if (ws_bind_ex(ws, kinds[i], on_event, &st, on_free) != WS_OK)
            return fail("ws_bind_ex");
    }
    if (!wait_for(&st, &st.opened, 1))
        return fail("no open event");
    if (ws_ready_state(ws) != WS_OPEN)
        return fail("ready state after open");

    if (ws_send(ws, "hello from C") != WS_OK)
        return fail("ws_send");
    if (!wait_for(&st, &st.messages, 1))
        return fail("no text echo");
    if (strcmp(st.last_text, "hello from C") != 0)
        return fail("text echo differs");
    if (ws_send_binary(ws, bytes, sizeof bytes) != WS_OK)
        return fail("ws_send_binary");
    if (!wait_for(&st, &st.messages, 2))
        return fail("no binary echo");
    if (st.last_binary_len != 4 || memcmp(st.last_binary, bytes, 4) != 0)
        return fail("binary echo differs");

    if (ws_url(ws, buf, sizeof buf) != strlen(argv[1]) || strcmp(buf, argv[1]) != 0)
        printf("note: URL normalized to %s\n", buf);

    if (ws_close_ex(ws, 1000, "bye") != WS_OK)
        return fail("ws_close_ex");
    if (!wait_for(&st, &st.closes, 1))
        return fail("no close event");
    if (st.errors != 0 || !st.was_clean || st.close_code != 1000) {
        printf("close code %u clean %d errors %d\n", st.close_code, st.was_clean, st.errors);
        return fail("the close was not clean");
    }
    if (ws_send(ws, "late") != WS_ERR_INVALID_STATE)
        return fail("send after close must be WS_ERR_INVALID_STATE");
    if (ws_free(ws) != WS_OK)
        return fail("ws_free");
    if (st.finalized != 4)
        return fail("finalizers did not run once each by ws_free's return");
    ws_shutdown();
    printf("OK: open, text and binary echo, clean close (%u)\n", st.close_code);
    return 0;
}
