/*
 * Autobahn|Testsuite client driver for wsembed, through the C ABI only.
 *
 * Usage: client ws://127.0.0.1:PORT [--agent NAME] [--case-timeout SECONDS] [--deflate]
 *
 * Talks to `wstest -m fuzzingserver`:
 *   1. /getCaseCount                        -> N (a text message)
 *   2. for each case 1..N:
 *        /getCaseInfo?case=i                -> {"id": "1.1.1", ...} (for the log)
 *        /runCase?case=i&agent=NAME         -> echo every message back as it
 *                                              came (text as text, binary as
 *                                              binary) until the close event
 *   3. /updateReports?agent=NAME            -> the server writes its reports
 *
 * With --deflate every connection offers permessage-deflate (sections 12
 * and 13 test it; the other sections' server accepts no extension, so the
 * offer changes nothing there).
 *
 * Each connection must end with its close event within the case timeout
 * (default 120 s); a case that does not is reported loudly, its socket freed,
 * and the run goes on, but the exit status is then 1. The exit status says
 * whether the run completed, not whether the cases passed: check.py reads the
 * server's report for that.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wsembed.h"

/* What one connection saw; filled by callbacks on the IO thread. */
struct conn {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int echo;               /* echo messages back (runCase) */
    int closed;
    uint16_t close_code;
    bool was_clean;
    char close_reason[128];
    int errors;
    int error_code;
    char error_text[256];
    long messages;
    long long bytes;
    long send_failures;
    int first_send_failure;
    char *first_text;       /* first text message, kept when !echo */
};

static void conn_init(struct conn *c, int echo) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->changed, &attr);
    pthread_condattr_destroy(&attr);
    c->echo = echo;
}

static void conn_destroy(struct conn *c) {
    free(c->first_text);
    pthread_cond_destroy(&c->changed);
    pthread_mutex_destroy(&c->lock);
}

static void on_message(ws_handle ws, const ws_event *evt, void *userdata) {
    struct conn *c = userdata;
    int rc = WS_OK;
    if (c->echo) {
        /* Echo exactly: text stays text (it may hold NUL bytes), binary stays binary. */
        rc = evt->is_binary ? ws_send_binary(ws, evt->data, evt->len)
                            : ws_send_text(ws, (const char *)evt->data, evt->len);
    }
    pthread_mutex_lock(&c->lock);
    c->messages++;
    c->bytes += (long long)evt->len;
    if (rc != WS_OK && c->send_failures++ == 0)
        c->first_send_failure = rc;
    if (!c->echo && c->first_text == NULL && !evt->is_binary) {
        c->first_text = malloc(evt->len + 1);
        if (c->first_text != NULL)
            memcpy(c->first_text, evt->data, evt->len + 1); /* data is NUL-terminated */
    }
    pthread_mutex_unlock(&c->lock);
}

static void on_error(ws_handle ws, const ws_event *evt, void *userdata) {
    struct conn *c = userdata;
    (void)ws;
    pthread_mutex_lock(&c->lock);
    c->errors++;
    c->error_code = evt->error_code;
    snprintf(c->error_text, sizeof c->error_text, "%s", evt->reason);
    pthread_mutex_unlock(&c->lock);
}

static void on_close(ws_handle ws, const ws_event *evt, void *userdata) {
    struct conn *c = userdata;
    (void)ws;
    pthread_mutex_lock(&c->lock);
    c->closed++;
    c->close_code = evt->code;
    c->was_clean = evt->was_clean;
    snprintf(c->close_reason, sizeof c->close_reason, "%s", evt->reason);
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
}

/* Options for every connection: NULL, or the deflate offer (--deflate). */
static ws_options *g_options;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/*
 * Opens url, binds every callback right after ws_open (events that happen
 * before a bind are replayed or held, so this is race-free), waits for the
 * close event for at most timeout_s seconds, frees the socket.
 * Returns 0 when the close event came, 1 on timeout, 2 when ws_open failed.
 */
static int run_connection(const char *url, struct conn *c, double timeout_s) {
    ws_handle ws = ws_open_ex(url, g_options);
    if (ws == 0) {
        fprintf(stderr, "ws_open(%s) failed: %s\n", url, ws_last_error());
        return 2;
    }
    if (ws_bind(ws, WS_EVENT_MESSAGE, on_message, c) != WS_OK ||
        ws_bind(ws, WS_EVENT_ERROR, on_error, c) != WS_OK ||
        ws_bind(ws, WS_EVENT_CLOSE, on_close, c) != WS_OK) {
        fprintf(stderr, "ws_bind failed: %s\n", ws_last_error());
        ws_free(ws);
        return 2;
    }
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)timeout_s;
    deadline.tv_nsec += (long)((timeout_s - (double)(time_t)timeout_s) * 1e9);
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->lock);
    int rc = 0;
    while (c->closed == 0) {
        rc = pthread_cond_timedwait(&c->changed, &c->lock, &deadline);
        if (rc == ETIMEDOUT)
            break;
    }
    int closed = c->closed;
    pthread_mutex_unlock(&c->lock);
    /* No callback runs after ws_free returns: c may be reused or destroyed. */
    ws_free(ws);
    return closed ? 0 : 1;
}

/* The value of "key": "value" in a flat JSON object; "?" if absent. */
static void json_string(const char *json, const char *key, char *out, size_t cap) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\"", key);
    const char *p = json ? strstr(json, pattern) : NULL;
    snprintf(out, cap, "?");
    if (p == NULL)
        return;
    p = strchr(p + strlen(pattern), '"');
    if (p == NULL)
        return;
    p++;
    const char *end = strchr(p, '"');
    if (end == NULL)
        return;
    size_t n = (size_t)(end - p);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

static void usage(const char *argv0) {
    fprintf(stderr, "usage: %s ws://127.0.0.1:PORT [--agent NAME] [--case-timeout SECONDS] [--deflate]\n",
            argv0);
}

int main(int argc, char **argv) {
    const char *base = NULL;
    const char *agent = "wsembed";
    double case_timeout = 120.0;
    const double control_timeout = 60.0;
    char url[512];
    struct conn c;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--agent") == 0 && i + 1 < argc) {
            agent = argv[++i];
        } else if (strcmp(argv[i], "--case-timeout") == 0 && i + 1 < argc) {
            case_timeout = atof(argv[++i]);
        } else if (strcmp(argv[i], "--deflate") == 0) {
            if (g_options == NULL)
                g_options = ws_options_new();
            if (g_options == NULL || ws_options_set_deflate(g_options, true) != WS_OK) {
                fprintf(stderr, "cannot offer deflate: %s\n", ws_last_error());
                return 2;
            }
        } else if (base == NULL && strncmp(argv[i], "ws://", 5) == 0) {
            base = argv[i];
        } else {
            usage(argv[0]);
            return 2;
        }
    }
    if (base == NULL || case_timeout <= 0) {
        usage(argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("wsembed %s, agent %s, server %s%s\n", ws_version(), agent, base,
           g_options ? ", offering permessage-deflate" : "");

    /* 1. How many cases. */
    snprintf(url, sizeof url, "%s/getCaseCount", base);
    conn_init(&c, 0);
    if (run_connection(url, &c, control_timeout) != 0 || c.first_text == NULL) {
        fprintf(stderr, "getCaseCount failed (close %u, error %s)\n", c.close_code, c.error_text);
        conn_destroy(&c);
        return 1;
    }
    int count = atoi(c.first_text);
    conn_destroy(&c);
    if (count <= 0) {
        fprintf(stderr, "getCaseCount answered %d\n", count);
        return 1;
    }
    printf("%d cases\n", count);

    /* 2. Every case. */
    int stuck = 0;
    double started = now_s();
    for (int i = 1; i <= count; i++) {
        char id[32] = "?";
        snprintf(url, sizeof url, "%s/getCaseInfo?case=%d", base, i);
        conn_init(&c, 0);
        if (run_connection(url, &c, control_timeout) == 0)
            json_string(c.first_text, "id", id, sizeof id);
        conn_destroy(&c);

        snprintf(url, sizeof url, "%s/runCase?case=%d&agent=%s", base, i, agent);
        conn_init(&c, 1);
        double t0 = now_s();
        int rc = run_connection(url, &c, case_timeout);
        double dt = now_s() - t0;
        if (rc == 2) {
            conn_destroy(&c);
            return 1;
        }
        printf("case %3d/%d %-8s %7.3f s  msgs %ld (%lld bytes)  ", i, count, id, dt, c.messages,
               c.bytes);
        if (rc == 0)
            printf("close %u%s%s%s", c.close_code, c.was_clean ? " clean" : " unclean",
                   c.close_reason[0] ? " reason: " : "", c.close_reason);
        else
            printf("NO CLOSE EVENT");
        if (c.errors)
            printf("  error %d %s", c.error_code, c.error_text);
        if (c.send_failures)
            printf("  %ld echo sends refused (first: %s)", c.send_failures,
                   ws_strerror(c.first_send_failure));
        printf("\n");
        if (rc == 1) {
            stuck++;
            printf("STUCK: case %d (%s) had no close event within %g s; socket freed\n", i, id,
                   case_timeout);
        }
        conn_destroy(&c);
    }
    printf("ran %d cases in %.1f s\n", count, now_s() - started);

    /* 3. Reports. */
    snprintf(url, sizeof url, "%s/updateReports?agent=%s", base, agent);
    conn_init(&c, 0);
    int rc = run_connection(url, &c, control_timeout);
    conn_destroy(&c);
    ws_options_free(g_options);
    ws_shutdown();
    if (rc != 0) {
        fprintf(stderr, "updateReports did not complete\n");
        return 1;
    }
    if (stuck) {
        printf("FAIL: %d case(s) never closed\n", stuck);
        return 1;
    }
    printf("client done: %d cases, reports updated\n", count);
    return 0;
}
