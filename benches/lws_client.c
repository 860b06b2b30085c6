/*
 * libwebsockets client for benches/run (figures 1 and 2, the "4b" rows):
 * the same round-trip and streaming runs as wsbench's clients, written the
 * way libwebsockets wants: writes only from LWS_CALLBACK_CLIENT_WRITEABLE,
 * asked for with lws_callback_on_writable() when a message may go out.
 *
 *   lws_client rtt|stream --port P [--size S] [--count N] [--warmup W] [--window W]
 *
 * rtt: text, one message in flight; stream: binary, WINDOW in flight.
 * Prints one JSON line like wsbench. Connects to 127.0.0.1 only, and gives
 * up by itself after 300 s.
 */
#include <libwebsockets.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct mark {
    double at;
    double cpu;
    long vcsw, ivcsw;
};

static struct {
    int binary;
    size_t size;
    uint64_t warmup, count, window, total;
    uint64_t sent, received;
    size_t rx_len;
    int rx_bad;
    unsigned char *buf; /* LWS_PRE + size */
    unsigned char *payload;
    struct mark start, end;
    int started, done, failed;
    char failure[256];
} st;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct mark mark(void) {
    struct rusage ru;
    struct mark m;
    getrusage(RUSAGE_SELF, &ru);
    m.at = now();
    m.cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
            ru.ru_stime.tv_usec / 1e6;
    m.vcsw = ru.ru_nvcsw;
    m.ivcsw = ru.ru_nivcsw;
    return m;
}

static int may_send(void) {
    return st.sent < st.total && st.sent - st.received < st.window;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len) {
    (void)user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (st.warmup == 0) {
            st.start = mark();
            st.started = 1;
        }
        lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (!may_send())
            break;
        /* lws masks in place: the one copy per message every client makes. */
        memcpy(st.buf + LWS_PRE, st.payload, st.size);
        if (lws_write(wsi, st.buf + LWS_PRE, st.size, st.binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) <
            (int)st.size) {
            snprintf(st.failure, sizeof st.failure, "lws_write failed");
            st.failed = 1;
            return -1;
        }
        st.sent++;
        if (may_send())
            lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE: {
        const unsigned char *data = in;
        if (len > 0) {
            if (st.rx_len == 0 && data[0] != st.payload[0])
                st.rx_bad = 1;
            if (st.rx_len + len == st.size && data[len - 1] != st.payload[st.size - 1])
                st.rx_bad = 1;
        }
        st.rx_len += len;
        if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) != 0)
            break;
        if (st.rx_len != st.size || st.rx_bad) {
            snprintf(st.failure, sizeof st.failure, "bad echo: %zu bytes", st.rx_len);
            st.failed = 1;
            return -1;
        }
        st.rx_len = 0;
        st.received++;
        if (st.received == st.warmup) {
            st.start = mark();
            st.started = 1;
        }
        if (st.received == st.total) {
            st.end = mark();
            st.done = 1;
            break;
        }
        if (may_send())
            lws_callback_on_writable(wsi);
        break;
    }
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        snprintf(st.failure, sizeof st.failure, "connection error: %s",
                 in ? (const char *)in : "(none)");
        st.failed = 1;
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (!st.done) {
            snprintf(st.failure, sizeof st.failure, "closed before the end");
            st.failed = 1;
        }
        break;
    default:
        break;
    }
    return 0;
}

static struct lws_protocols protocols[] = {
    {"bench", callback, 0, 128 * 1024, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static uint64_t arg(int argc, char **argv, const char *key, uint64_t dflt) {
    for (int i = 2; i + 1 < argc; i += 2)
        if (strcmp(argv[i] + 2, key) == 0 && strncmp(argv[i], "--", 2) == 0)
            return strtoull(argv[i + 1], NULL, 10);
    return dflt;
}

int main(int argc, char **argv) {
    if (argc < 2 || (strcmp(argv[1], "rtt") && strcmp(argv[1], "stream"))) {
        fprintf(stderr, "usage: lws_client rtt|stream --port P [--size S] [--count N] "
                        "[--warmup W] [--window W]\n");
        return 2;
    }
    int rtt = strcmp(argv[1], "rtt") == 0;
    int port = (int)arg(argc, argv, "port", 0);
    st.binary = !rtt;
    st.size = arg(argc, argv, "size", rtt ? 16 : 65536);
    st.count = arg(argc, argv, "count", 10000);
    st.warmup = arg(argc, argv, "warmup", rtt ? 1000 : 0);
    st.window = rtt ? 1 : arg(argc, argv, "window", 16);
    if (st.count == 0 || st.window == 0 || st.size == 0 || port == 0) {
        fprintf(stderr, "lws_client: --port, and non-zero --size, --count, --window\n");
        return 2;
    }
    st.total = st.warmup + st.count;
    st.buf = malloc(LWS_PRE + st.size);
    st.payload = malloc(st.size);
    if (!st.buf || !st.payload)
        return 1;
    for (size_t i = 0; i < st.size; i++)
        st.payload[i] = (unsigned char)('a' + i % 26);
    alarm(300); /* stops by itself */

    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    /* lws reads at most this much per service round (default 4 KiB). */
    info.pt_serv_buf_size = 256 * 1024;
    struct lws_context *ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "lws_client: lws_create_context failed\n");
        return 1;
    }
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = ctx;
    ci.address = "127.0.0.1";
    ci.port = port;
    ci.path = "/";
    ci.host = "127.0.0.1";
    ci.origin = "127.0.0.1";
    ci.local_protocol_name = "bench";
    ci.ietf_version_or_minus_one = -1;
    if (!lws_client_connect_via_info(&ci)) {
        fprintf(stderr, "lws_client: connect failed\n");
        return 1;
    }
    while (!st.done && !st.failed)
        if (lws_service(ctx, 0) < 0)
            break;
    lws_context_destroy(ctx);
    if (!st.done || !st.started) {
        fprintf(stderr, "lws_client: %s\n", st.failure[0] ? st.failure : "did not finish");
        return 1;
    }
    double secs = st.end.at - st.start.at;
    double n = (double)st.count;
    printf("{\"bench\": \"%s\", \"impl\": \"lws\", \"size\": %zu, \"count\": %.0f, \"window\": %llu, "
           "\"secs\": %.9f, \"per_sec\": %.3f, \"gb_per_sec\": %.6f, \"cpu_secs\": %.6f, "
           "\"cpu_util\": %.6f, \"vcsw_per_msg\": %.6f, \"ivcsw_per_msg\": %.6f}\n",
           argv[1], st.size, n, (unsigned long long)st.window, secs, n / secs,
           n * st.size / secs / 1e9, st.end.cpu - st.start.cpu,
           (st.end.cpu - st.start.cpu) / secs, (st.end.vcsw - st.start.vcsw) / n,
           (st.end.ivcsw - st.start.ivcsw) / n);
    return 0;
}
