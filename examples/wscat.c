/*
 * wscat: an interactive WebSocket client, like the wscat and websocat
 * tools, written only against the public header wsembed.h.
 *
 *   wscat URL [-H "Name: value"]... [-p subprotocol]... [--ca FILE]
 *         [--insecure] [--deflate] [--reconnect] [--binary]
 *         [--proxy URL] [--no-proxy-env] [--no-proxy LIST] [--stats]
 *
 * Each line read from standard input is sent as one message (text, or
 * binary with --binary; the newline is not sent). Each message received is
 * written to standard output followed by a newline: text as it is, binary
 * as a hex dump (raw bytes with --binary). --deflate offers compression
 * (permessage-deflate), which the server may decline. --reconnect keeps
 * the session across lost connections: each loss is reported ("connection
 * lost ... reconnecting in N ms") and lines typed meanwhile wait for the
 * next connection; a refusal that would recur, or a server's close 1000,
 * still ends it. --proxy goes through an http://, https://, socks5:// or
 * socks5h:// proxy ("" for none); without it the environment's ws_proxy,
 * http_proxy, all_proxy... apply (as in curl), unless --no-proxy-env.
 * --no-proxy lists the hosts to reach directly, replacing no_proxy and the
 * exemption of loopback addresses from environment proxies. --stats prints
 * the socket's counters (ws_get_stats) to standard error at the end, as
 * one line of key=value pairs. Connection events
 * (connected, with the subprotocol and the extensions agreed; error;
 * closed with its code and reason) go to standard error, so that
 * standard output carries only messages. At the end of input (or on
 * Ctrl-C) wscat closes the connection with code 1000 and waits for the
 * close event.
 *
 * A server that refuses the handshake with an HTTP status gets its status,
 * its WWW-Authenticate, Retry-After and Location headers and its body
 * printed to standard error after the error.
 *
 * Exit status: 0 after a clean close, 1 when the connection could not be
 * opened or failed, or the close was not clean, 2 for bad arguments.
 *
 * Build (see README): cc -Iinclude examples/wscat.c -Ltarget/release -lwsembed -lpthread
 */

/* poll, pipe, sigaction and fcntl are POSIX, outside strict C11. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wsembed.h"

/*
 * What the callbacks (on wsembed's IO thread) tell the main thread. The
 * main thread waits in poll() on standard input and on wake_pipe, which a
 * callback writes to after each change, so one loop can wait for input and
 * for the connection at once.
 */
static struct {
    pthread_mutex_t lock;
    int opened;
    int failed; /* an error event arrived */
    int closed;
    int clean;  /* the close event's was_clean */
    int binary; /* --binary: print binary messages raw */
    int reconnect; /* --reconnect */
    int stats; /* --stats */
} st = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, 0, 0, 0};

static int wake_pipe[2] = {-1, -1};
static volatile sig_atomic_t interrupted;

/* Async-signal-safe and non-blocking (the pipe is O_NONBLOCK): a full pipe
 * already means "wake up". */
static void wake(void) {
    char byte = 1;
    ssize_t n = write(wake_pipe[1], &byte, 1);
    (void)n;
}

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
    wake();
}

static void on_open(ws_handle ws, const ws_event *event, void *userdata) {
    char url[512], protocol[256], extensions[512];
    (void)event;
    (void)userdata;
    ws_url(ws, url, sizeof url);
    ws_protocol(ws, protocol, sizeof protocol);
    ws_extensions(ws, extensions, sizeof extensions);
    /* One line, whole, even if the main thread writes to stderr meanwhile. */
    flockfile(stderr);
    fprintf(stderr, "wscat: connected to %s", url);
    if (protocol[0] != '\0')
        fprintf(stderr, " (subprotocol \"%s\")", protocol);
    if (extensions[0] != '\0')
        fprintf(stderr, " (extensions \"%s\")", extensions);
    fputc('\n', stderr);
    funlockfile(stderr);
    pthread_mutex_lock(&st.lock);
    st.opened = 1;
    pthread_mutex_unlock(&st.lock);
    wake();
}

static void on_message(ws_handle ws, const ws_event *event, void *userdata) {
    size_t i;
    (void)ws;
    (void)userdata;
    /* One message is written under the stream's lock, so it stays whole
     * even if the main thread writes at the same time. */
    flockfile(stdout);
    if (!event->is_binary || st.binary) {
        fwrite(event->data, 1, event->len, stdout);
    } else {
        printf("[binary, %zu bytes]", event->len);
        for (i = 0; i < event->len; i++)
            printf(" %02x", event->data[i]);
    }
    putchar('\n');
    fflush(stdout);
    funlockfile(stdout);
}

/* Prints "wscat: Name: value" for a header of the handshake's answer, if
 * the answer has it. */
static void print_response_header(ws_handle ws, const char *name) {
    size_t len = ws_response_header(ws, name, NULL, 0);
    char *value;
    if (ws_last_status() != WS_OK) /* absent (an empty one is WS_OK) */
        return;
    value = malloc(len + 1);
    if (value == NULL)
        return;
    ws_response_header(ws, name, value, len + 1);
    fprintf(stderr, "wscat: %s: %s\n", name, value);
    free(value);
}

/* Prints what a server that refused the handshake said: its status, the
 * headers that tell what to do next, and its body. A body with control
 * characters (binary, or terminal escapes) is shown as a hex dump, as
 * binary messages are. */
static void print_refusal(ws_handle ws, int http_status) {
    size_t len = ws_response_body(ws, NULL, 0), i;
    unsigned char *body;
    int printable = 1;
    fprintf(stderr, "wscat: refused with HTTP %d\n", http_status);
    print_response_header(ws, "WWW-Authenticate");
    print_response_header(ws, "Retry-After");
    print_response_header(ws, "Location");
    if (len == 0 || (body = malloc(len)) == NULL)
        return;
    /* Once reported, the answer no longer changes: len still fits. */
    ws_response_body(ws, body, len);
    for (i = 0; i < len; i++)
        if ((body[i] < 0x20 && body[i] != '\n' && body[i] != '\r' && body[i] != '\t') || body[i] == 0x7f)
            printable = 0;
    if (printable) {
        fprintf(stderr, "wscat: body (%zu bytes):\n", len);
        fwrite(body, 1, len, stderr);
        if (body[len - 1] != '\n')
            fputc('\n', stderr);
    } else {
        fprintf(stderr, "wscat: body: [binary, %zu bytes]", len);
        for (i = 0; i < len; i++)
            fprintf(stderr, " %02x", body[i]);
        fputc('\n', stderr);
    }
    free(body);
}

static void on_error(ws_handle ws, const ws_event *event, void *userdata) {
    (void)userdata;
    flockfile(stderr);
    fprintf(stderr, "wscat: error: %s [%s]\n", event->reason, ws_strerror(event->error_code));
    if (event->http_status != 0)
        print_refusal(ws, event->http_status);
    funlockfile(stderr);
    pthread_mutex_lock(&st.lock);
    st.failed = 1;
    pthread_mutex_unlock(&st.lock);
}

static void on_close(ws_handle ws, const ws_event *event, void *userdata) {
    (void)ws;
    (void)userdata;
    fprintf(stderr, "wscat: closed: code %u, reason \"%s\", %s\n", event->code, event->reason,
            event->was_clean ? "clean" : "not clean");
    pthread_mutex_lock(&st.lock);
    st.closed = 1;
    st.clean = event->was_clean;
    pthread_mutex_unlock(&st.lock);
    wake();
}

static void on_reconnecting(ws_handle ws, const ws_event *event, void *userdata) {
    (void)ws;
    (void)userdata;
    flockfile(stderr);
    fprintf(stderr, "wscat: connection lost: code %u", event->code);
    if (event->reason[0] != '\0')
        fprintf(stderr, ", \"%s\"", event->reason);
    if (event->error_code != 0)
        fprintf(stderr, " [%s]", ws_strerror(event->error_code));
    fprintf(stderr, "; reconnecting in %u ms (attempt %u)\n", event->delay_ms, event->attempt);
    funlockfile(stderr);
    wake();
}

static int is_closed(void) {
    int closed;
    pthread_mutex_lock(&st.lock);
    closed = st.closed;
    pthread_mutex_unlock(&st.lock);
    return closed;
}

static int is_open(void) {
    int opened;
    pthread_mutex_lock(&st.lock);
    opened = st.opened;
    pthread_mutex_unlock(&st.lock);
    return opened;
}

static void drain_wake_pipe(void) {
    char buf[64];
    while (read(wake_pipe[0], buf, sizeof buf) > 0) {
    }
}

/* Waits until the wake pipe is readable (an event or Ctrl-C). */
static void wait_wake(void) {
    struct pollfd p = {wake_pipe[0], POLLIN, 0};
    while (poll(&p, 1, -1) < 0 && errno == EINTR) {
    }
    drain_wake_pipe();
}

static void usage(FILE *to) {
    fprintf(to, "usage: wscat URL [-H \"Name: value\"]... [-p subprotocol]... [--ca FILE]\n"
                "             [--insecure] [--deflate] [--reconnect] [--binary]\n"
                "             [--proxy URL] [--no-proxy-env] [--no-proxy LIST] [--stats]\n"
                "       wscat --version\n"
                "Sends each line of standard input as a message and prints each message\n"
                "received; events go to standard error. Ctrl-C or end of input closes.\n"
                "  -H, --header \"Name: value\"  a header for the opening handshake\n"
                "  -p, --protocol NAME         offer a subprotocol\n"
                "  --ca FILE                   also trust the CA certificates in a PEM file\n"
                "  --insecure                  do not check the server's certificate\n"
                "  --deflate                   offer compression (permessage-deflate)\n"
                "  --reconnect                 reconnect after a lost connection\n"
                "  --binary                    send lines as binary, print binary raw\n"
                "  --proxy URL                 an http://, https://, socks5:// or socks5h://\n"
                "                              proxy; \"\" for none, whatever the environment says\n"
                "  --no-proxy-env              ignore ws_proxy, http_proxy, all_proxy...\n"
                "  --no-proxy LIST             hosts to reach directly (replaces no_proxy)\n"
                "  --stats                     print the connection's counters at the end\n");
}

/* Reports a failed option setter; WS_ERR_UNSUPPORTED means this build of
 * the library lacks the feature (TLS, deflate), which deserves a plain
 * sentence. */
static int option_failed(int status, const char *option) {
    if (status == WS_ERR_UNSUPPORTED)
        fprintf(stderr, "wscat: %s is unsupported: %s\n", option, ws_last_error());
    else
        fprintf(stderr, "wscat: %s: %s\n", option, ws_last_error());
    return status == WS_ERR_UNSUPPORTED ? 1 : 2;
}

/* Builds the options from the command line; returns 0, or the exit status. */
static int parse_options(int argc, char **argv, ws_options *options, const char **url) {
    int i, status;
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const int has_value = i + 1 < argc;
        if ((strcmp(arg, "-H") == 0 || strcmp(arg, "--header") == 0) && has_value) {
            /* "Name: value": the name ends at the first colon; the value
             * starts after the spaces that follow it. */
            const char *header = argv[++i];
            const char *colon = strchr(header, ':');
            const char *value;
            char *name;
            if (colon == NULL || colon == header) {
                fprintf(stderr, "wscat: -H wants \"Name: value\", not \"%s\"\n", header);
                return 2;
            }
            name = malloc((size_t)(colon - header) + 1);
            if (name == NULL)
                return 1;
            memcpy(name, header, (size_t)(colon - header));
            name[colon - header] = '\0';
            value = colon + 1;
            while (*value == ' ' || *value == '\t')
                value++;
            status = ws_options_add_header(options, name, value);
            free(name);
            if (status != WS_OK)
                return option_failed(status, "-H");
        } else if ((strcmp(arg, "-p") == 0 || strcmp(arg, "--protocol") == 0) && has_value) {
            status = ws_options_add_protocol(options, argv[++i]);
            if (status != WS_OK)
                return option_failed(status, "-p");
        } else if (strcmp(arg, "--ca") == 0 && has_value) {
            status = ws_options_set_ca_file(options, argv[++i]);
            if (status != WS_OK)
                return option_failed(status, "--ca");
        } else if (strcmp(arg, "--insecure") == 0) {
            status = ws_options_set_insecure_skip_verify(options, true);
            if (status != WS_OK)
                return option_failed(status, "--insecure");
            fprintf(stderr, "wscat: --insecure: the server's certificate is not checked\n");
        } else if (strcmp(arg, "--deflate") == 0) {
            status = ws_options_set_deflate(options, true);
            if (status != WS_OK)
                return option_failed(status, "--deflate");
        } else if (strcmp(arg, "--reconnect") == 0) {
            status = ws_options_set_reconnect(options, true);
            if (status != WS_OK)
                return option_failed(status, "--reconnect");
            st.reconnect = 1;
        } else if (strcmp(arg, "--binary") == 0) {
            st.binary = 1;
        } else if (strcmp(arg, "--proxy") == 0 && has_value) {
            status = ws_options_set_proxy(options, argv[++i]);
            if (status != WS_OK)
                return option_failed(status, "--proxy");
        } else if (strcmp(arg, "--no-proxy-env") == 0) {
            status = ws_options_set_proxy_env(options, false);
            if (status != WS_OK)
                return option_failed(status, "--no-proxy-env");
        } else if (strcmp(arg, "--no-proxy") == 0 && has_value) {
            status = ws_options_set_no_proxy(options, argv[++i]);
            if (status != WS_OK)
                return option_failed(status, "--no-proxy");
        } else if (strcmp(arg, "--stats") == 0) {
            st.stats = 1;
        } else if (arg[0] != '-' && *url == NULL) {
            *url = arg;
        } else {
            fprintf(stderr, "wscat: unexpected argument \"%s\"\n", arg);
            usage(stderr);
            return 2;
        }
    }
    if (*url == NULL) {
        usage(stderr);
        return 2;
    }
    return 0;
}

/* The counters --stats prints, by offset and size rather than by name in
 * code, so that print_stats can skip the ones a library did not fill. */
#define STAT_FIELD(field) {#field, offsetof(ws_stats, field), sizeof(((ws_stats *)0)->field)}
static const struct {
    const char *name;
    size_t offset, size;
} stat_fields[] = {
    STAT_FIELD(bytes_sent),         STAT_FIELD(bytes_received),
    STAT_FIELD(messages_sent),      STAT_FIELD(messages_received),
    STAT_FIELD(frames_sent),        STAT_FIELD(frames_received),
    STAT_FIELD(payload_bytes_sent), STAT_FIELD(payload_bytes_received),
    STAT_FIELD(handshake_ms),       STAT_FIELD(last_rtt_us),
    STAT_FIELD(connections),        STAT_FIELD(pongs_received),
    STAT_FIELD(pings_sent),         STAT_FIELD(pings_answered),
};

/* Prints "wscat: stats: key=value ..." on one line. A library older than
 * this header fills fewer bytes (it says how many in `size`): only the
 * fields it filled are printed, rather than zeros it never wrote. */
static void print_stats(ws_handle ws) {
    ws_stats stats;
    size_t i;
    memset(&stats, 0, sizeof stats);
    stats.size = sizeof stats;
    if (ws_get_stats(ws, &stats) != WS_OK) {
        fprintf(stderr, "wscat: stats: %s\n", ws_last_error());
        return;
    }
    flockfile(stderr);
    fputs("wscat: stats:", stderr);
    for (i = 0; i < sizeof stat_fields / sizeof stat_fields[0]; i++) {
        const unsigned char *at = (const unsigned char *)&stats + stat_fields[i].offset;
        uint64_t value;
        if (stat_fields[i].offset + stat_fields[i].size > stats.size)
            continue;
        if (stat_fields[i].size == sizeof(uint64_t)) {
            memcpy(&value, at, sizeof value);
        } else {
            uint32_t narrow;
            memcpy(&narrow, at, sizeof narrow);
            value = narrow;
        }
        fprintf(stderr, " %s=%" PRIu64, stat_fields[i].name, value);
    }
    fputc('\n', stderr);
    funlockfile(stderr);
}

/* Sends one line. A full send queue is waited out (the peer is slow);
 * other refusals are reported and the line is dropped. Returns 0, or -1
 * when the socket can take no more (it is closing or closed). */
static int send_line(ws_handle ws, const char *line, size_t len) {
    for (;;) {
        int status = st.binary ? ws_send_binary(ws, line, len) : ws_send_text(ws, line, len);
        if (status == WS_OK)
            return 0;
        if (status == WS_ERR_QUEUE_FULL && !is_closed()) {
            /* No event says "the queue drained"; poll it gently. */
            poll(NULL, 0, 10);
            continue;
        }
        if (status == WS_ERR_INVALID_STATE) {
            /* Between connections: the line waits for the next one. */
            if (st.reconnect && ws_ready_state(ws) == WS_CONNECTING && !is_closed() && !interrupted) {
                wait_wake();
                continue;
            }
            return -1;
        }
        fprintf(stderr, "wscat: line not sent: %s%s\n", ws_last_error(),
                status == WS_ERR_INVALID_UTF8 ? " (use --binary for non-UTF-8 input)" : "");
        return 0;
    }
}

/* Reads standard input and sends each line, until end of input, Ctrl-C or
 * the connection closing. Lines are split here rather than with stdio so
 * that poll() sees exactly what is still unread. */
static void pump_stdin(ws_handle ws) {
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    struct pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {-1, POLLIN, 0}};
    fds[1].fd = wake_pipe[0];
    if (buf == NULL) {
        fprintf(stderr, "wscat: out of memory\n");
        return;
    }
    while (!interrupted && !is_closed()) {
        ssize_t n;
        char *start, *newline;
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (fds[1].revents)
            drain_wake_pipe();
        if (!fds[0].revents)
            continue;
        if (len == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                fprintf(stderr, "wscat: line too long for memory\n");
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        n = read(STDIN_FILENO, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            /* End of input (or a read error). A last line without a
             * newline is still a line. */
            if (len > 0)
                send_line(ws, buf, len);
            break;
        }
        len += (size_t)n;
        start = buf;
        while ((newline = memchr(start, '\n', len - (size_t)(start - buf))) != NULL) {
            if (send_line(ws, start, (size_t)(newline - start)) < 0) {
                free(buf);
                return;
            }
            start = newline + 1;
        }
        len -= (size_t)(start - buf);
        memmove(buf, start, len);
    }
    free(buf);
}

int main(int argc, char **argv) {
    const char *url = NULL;
    ws_options *options;
    ws_handle ws;
    struct sigaction sa;
    int status, ok;

    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("wscat (wsembed %s, TLS %s, deflate %s)\n", ws_version(), ws_has_tls() ? "yes" : "no",
               ws_has_deflate() ? "yes" : "no");
        return 0;
    }
    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    options = ws_options_new();
    if (options == NULL) {
        fprintf(stderr, "wscat: out of memory\n");
        return 1;
    }
    status = parse_options(argc, argv, options, &url);
    if (status != 0) {
        ws_options_free(options);
        return status;
    }

    if (pipe(wake_pipe) != 0 || fcntl(wake_pipe[0], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(wake_pipe[1], F_SETFL, O_NONBLOCK) != 0) {
        perror("wscat: pipe");
        ws_options_free(options);
        return 1;
    }
    /* The first Ctrl-C closes politely; a second one (SA_RESETHAND) kills. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    ws = ws_open_ex(url, options);
    ws_options_free(options); /* ws_open_ex copied what it needs */
    if (ws == 0) {
        fprintf(stderr, "wscat: cannot open %s: %s\n", url, ws_last_error());
        return 1;
    }
    ws_bind(ws, WS_EVENT_OPEN, on_open, NULL);
    ws_bind(ws, WS_EVENT_MESSAGE, on_message, NULL);
    ws_bind(ws, WS_EVENT_ERROR, on_error, NULL);
    ws_bind(ws, WS_EVENT_CLOSE, on_close, NULL);
    ws_bind(ws, WS_EVENT_RECONNECTING, on_reconnecting, NULL);

    /* Input is read only once the socket is open: until then a send would
     * be refused (WS_ERR_INVALID_STATE), and the lines wait in the pipe. */
    while (!is_open() && !is_closed() && !interrupted)
        wait_wake();
    if (is_open())
        pump_stdin(ws);

    ws_close_ex(ws, 1000, NULL);
    while (!is_closed())
        wait_wake();

    pthread_mutex_lock(&st.lock);
    ok = st.clean && !st.failed;
    pthread_mutex_unlock(&st.lock);
    if (st.stats)
        print_stats(ws);
    ws_free(ws);
    ws_shutdown();
    close(wake_pipe[0]);
    close(wake_pipe[1]);
    return ok ? 0 : 1;
}
