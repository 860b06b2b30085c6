/*
 * Dispatchers as a C host loop uses them, written only from
 * include/wsembed.h. Usage: dispatcher URL   (URL: an echo server)
 *
 * - The main thread runs a poll() loop on ws_dispatcher_fd(d1) and calls
 *   ws_dispatch(d1, 0, 0) when it is readable. MAIN_SOCKETS sockets opened
 *   with d1 each send MSG_COUNT text and binary messages (empty ones, one
 *   of 200 KiB, text with a NUL and multi-byte UTF-8), check every echo byte
 *   for byte and in order, then close with 1000.
 * - A second thread loops on ws_dispatch(d2, -1, 0) with sockets of its
 *   own, and is ended by ws_dispatcher_wakeup(d2).
 * - One socket without a dispatcher runs on the IO thread alongside.
 * - Every callback checks the thread it runs on (pthread_equal with the id
 *   saved at start); every ws_bind_ex finalizer runs exactly once, on the
 *   right thread, by the time ws_free returns (also for sockets that free
 *   themselves from their close callback: by the time ws_dispatch returns).
 * - Two "killer" sockets, one per dispatcher thread, meet inside their
 *   callbacks and each frees the other's socket: ws_free from inside a
 *   callback must not wait for the callback running on the other thread (if
 *   it did, both would wait for ever: a watchdog fails the run), and no
 *   callback of a freed killer may start afterwards.
 * - ws_dispatch from inside a callback of its own dispatcher is
 *   WS_ERR_INVALID_STATE (every callback checks it); ws_dispatcher_free is
 *   WS_ERR_INVALID_STATE while a socket is attached and WS_OK once all are
 *   freed; ws_shutdown comes last.
 * Every wait has a deadline. Exits 0 when every check passed; prints each
 * failure ("FAIL: ...") otherwise.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wsembed.h"

#define MAIN_SOCKETS 20
#define SECOND_SOCKETS 6
#define MSG_COUNT 8
#define BIG_BINARY (200 * 1024)
#define TEXT_REPEAT 4000
#define KILLER_ECHOES 3
#define KILLER_EXTRA 5
#define RUN_DEADLINE_S 90 /* the main loop, from the start */
#define SPIN_DEADLINE_S 30 /* the killers' meeting */
#define WATCHDOG_S 110 /* anything stuck, e.g. a ws_free that waits */

/* Which thread runs a socket's callbacks. */
enum role { ROLE_OTHER = 0, ROLE_MAIN, ROLE_SECOND, ROLE_IO };

static _Thread_local int thread_role; /* set on the main and second threads */
static pthread_t main_thread;         /* saved at start, before any thread */
static pthread_t second_thread;       /* pthread_create's result: main only */
static pthread_t second_self;         /* the second thread's own pthread_self */
static ws_dispatcher d1, d2, d3;
static const char *url;
static atomic_int stop_second, second_done;
static _Atomic(const char *) phase;

/* ------------------------------------------------------------ failures */

static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static int failures;

static void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void failf(const char *fmt, ...) {
    va_list ap;
    pthread_mutex_lock(&fail_lock);
    if (failures++ < 40) {
        va_start(ap, fmt);
        printf("FAIL: ");
        vprintf(fmt, ap);
        printf("\n");
        fflush(stdout);
        va_end(ap);
    }
    pthread_mutex_unlock(&fail_lock);
}

static int failure_count(void) {
    int n;
    pthread_mutex_lock(&fail_lock);
    n = failures;
    pthread_mutex_unlock(&fail_lock);
    return n;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void nap_ms(long ms) {
    struct timespec t = {ms / 1000, ms % 1000 * 1000000L};
    nanosleep(&t, NULL);
}

/* ------------------------------------------------------------ watchdog */

static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_cond = PTHREAD_COND_INITIALIZER;
static int finished;

/* Fails the run if it is not over after WATCHDOG_S seconds, whatever it is
 * stuck in (a wait inside wsembed has no deadline of ours). */
static void *watchdog(void *arg) {
    struct timespec deadline;
    (void)arg;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WATCHDOG_S;
    pthread_mutex_lock(&watch_lock);
    while (!finished) {
        if (pthread_cond_timedwait(&watch_cond, &watch_lock, &deadline) == ETIMEDOUT && !finished) {
            printf("FAIL: timeout: still running after %d s, while %s\n", WATCHDOG_S,
                   atomic_load(&phase));
            fflush(stdout);
            _exit(1);
        }
    }
    pthread_mutex_unlock(&watch_lock);
    return NULL;
}

/* ------------------------------------------------------------ messages */

/* Message k of socket id, the same when sent and when checked: a malloc'd
 * buffer of *len bytes followed by a NUL. */
static unsigned char *make_message(int id, int k, size_t *len, bool *binary) {
    static const char with_nul[] = "nul\0inside \xe2\x9c\x93 #";
    static const char unit[] = "wsembed \xe2\x9c\x93 d\xc3\xa9j\xc3\xa0 vu, ";
    static const char hello[] = "hello from socket ";
    static const char last[] = "last message of socket ";
    char tail[64];
    size_t n = 0, i, tail_len;
    unsigned char *p;

    tail_len = (size_t)snprintf(tail, sizeof tail, "%d", id);
    *binary = k == 1 || k == 3 || k == 4;
    switch (k) {
    case 0: n = sizeof hello - 1 + tail_len; break;
    case 1: n = 7; break;
    case 2: n = 0; break; /* empty text */
    case 3: n = 0; break; /* empty binary */
    case 4: n = BIG_BINARY; break;
    case 5: n = sizeof with_nul - 1 + tail_len; break;
    case 6: n = TEXT_REPEAT * (sizeof unit - 1) + tail_len; break;
    default: n = sizeof last - 1 + tail_len; break;
    }
    p = malloc(n + 1);
    if (p == NULL) {
        printf("FAIL: out of memory\n");
        exit(1);
    }
    switch (k) {
    case 0:
        memcpy(p, hello, sizeof hello - 1);
        memcpy(p + sizeof hello - 1, tail, tail_len);
        break;
    case 1: {
        const unsigned char bytes[7] = {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, (unsigned char)id};
        memcpy(p, bytes, 7);
        break;
    }
    case 2:
    case 3: break;
    case 4:
        for (i = 0; i < n; i++)
            p[i] = (unsigned char)(i * 7u + (i >> 8) * 13u + (size_t)id * 31u);
        break;
    case 5:
        memcpy(p, with_nul, sizeof with_nul - 1);
        memcpy(p + sizeof with_nul - 1, tail, tail_len);
        break;
    case 6:
        for (i = 0; i < TEXT_REPEAT; i++)
            memcpy(p + i * (sizeof unit - 1), unit, sizeof unit - 1);
        memcpy(p + TEXT_REPEAT * (sizeof unit - 1), tail, tail_len);
        break;
    default:
        memcpy(p, last, sizeof last - 1);
        memcpy(p + sizeof last - 1, tail, tail_len);
        break;
    }
    p[n] = 0;
    *len = n;
    return p;
}

static int send_message(ws_handle socket, int id, int k) {
    size_t len;
    bool binary;
    unsigned char *m = make_message(id, k, &len, &binary);
    int r;
    if (binary)
        r = ws_send_binary(socket, len > 0 ? m : NULL, len);
    else if (k == 5 || k == 6)
        r = ws_send_text(socket, (const char *)m, len); /* 5 holds a NUL */
    else
        r = ws_send(socket, (const char *)m);
    free(m);
    return r;
}

/* ------------------------------------------------------------ sockets */

struct conn;

struct binding {
    struct conn *conn;
    ws_event_kind kind;
    int finalized;    /* times its finalizer ran */
    int wrong_thread; /* of which on a thread it should not run on */
};

struct conn {
    int id;
    int role;                 /* the thread that runs its callbacks */
    ws_dispatcher dispatcher; /* 0: the IO thread */
    ws_handle ws;
    bool held;      /* freed last, to test ws_dispatcher_free */
    bool self_free; /* freed from inside its own close callback */
    struct binding bindings[4];
    int calls, opened, received, errors, closes, nested_refused;
    bool freed;            /* ws_free returned */
    bool finalizers_known; /* its finalizers were checked */
};

/* The IO-thread socket: every field is read and written under io_lock. */
static pthread_mutex_t io_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t io_thread;
static bool io_thread_known;

static struct conn *conn_new(int id, int role, ws_dispatcher dispatcher) {
    struct conn *c = calloc(1, sizeof *c);
    int k;
    if (c == NULL) {
        printf("FAIL: out of memory\n");
        exit(1);
    }
    c->id = id;
    c->role = role;
    c->dispatcher = dispatcher;
    for (k = 0; k < 4; k++) {
        c->bindings[k].conn = c;
        c->bindings[k].kind = (ws_event_kind)(k + 1);
    }
    return c;
}

/* True when the calling thread is the one that runs c's callbacks. */
static bool on_its_thread(const struct conn *c) {
    pthread_t self = pthread_self();
    switch (c->role) {
    case ROLE_MAIN: return pthread_equal(self, main_thread) && thread_role == ROLE_MAIN;
    case ROLE_SECOND: return pthread_equal(self, second_self) && thread_role == ROLE_SECOND;
    default: /* ROLE_IO (under io_lock): one thread, neither of ours */
        if (pthread_equal(self, main_thread) || thread_role != ROLE_OTHER)
            return false;
        if (!io_thread_known) {
            io_thread = self;
            io_thread_known = true;
        }
        return pthread_equal(self, io_thread);
    }
}

static void check_echo(struct conn *c, const ws_event *ev) {
    int k = c->received;
    size_t len, i;
    bool binary;
    unsigned char *want;

    if (k >= MSG_COUNT) {
        failf("socket %d: message #%d arrived, only %d were sent", c->id, k + 1, MSG_COUNT);
        return;
    }
    want = make_message(c->id, k, &len, &binary);
    if (ev->data == NULL)
        failf("socket %d: message %d has data NULL", c->id, k);
    else if (ev->is_binary != binary)
        failf("socket %d: message %d: is_binary %d, sent %d", c->id, k, ev->is_binary, binary);
    else if (ev->len != len)
        failf("socket %d: message %d: %zu bytes, sent %zu (out of order?)", c->id, k, ev->len, len);
    else if (memcmp(ev->data, want, len) != 0) {
        for (i = 0; i < len && ev->data[i] == want[i]; i++)
            ;
        failf("socket %d: message %d differs at byte %zu of %zu", c->id, k, i, len);
    } else if (ev->data[len] != 0)
        failf("socket %d: message %d: no NUL after the payload", c->id, k);
    free(want);
    c->received++;
}

static void handle_event(ws_handle socket, const ws_event *ev, struct binding *b) {
    struct conn *c = b->conn;
    int r, k;

    c->calls++;
    if (!on_its_thread(c))
        failf("socket %d: callback on the wrong thread", c->id);
    if (c->freed)
        failf("socket %d: callback after ws_free returned", c->id);
    if (socket != c->ws)
        failf("socket %d: callback for handle %llu", c->id, (unsigned long long)socket);
    if (ev->kind != b->kind)
        failf("socket %d: event %u given to the callback bound to %u", c->id, ev->kind, b->kind);
    if (c->dispatcher != 0) {
        /* Not reentrant: refused, and nothing runs. */
        r = ws_dispatch(c->dispatcher, 0, 0);
        if (r != WS_ERR_INVALID_STATE || ws_last_status() != WS_ERR_INVALID_STATE)
            failf("socket %d: ws_dispatch from its own callback gave %d, not WS_ERR_INVALID_STATE",
                  c->id, r);
        else
            c->nested_refused++;
    }
    switch (ev->kind) {
    case WS_EVENT_OPEN:
        if (c->opened || c->received || c->errors || c->closes)
            failf("socket %d: open is not the first event", c->id);
        c->opened++;
        if (ws_ready_state(socket) != WS_OPEN)
            failf("socket %d: ready state %d in the open callback", c->id, ws_ready_state(socket));
        if (c->dispatcher != 0 && ws_dispatcher_free(c->dispatcher) != WS_ERR_INVALID_STATE)
            failf("socket %d: ws_dispatcher_free from its own callback was not refused", c->id);
        if (c->role == ROLE_MAIN && c->id == 1) {
            /* Another dispatcher may be dispatched from a callback. */
            r = ws_dispatch(d3, 0, 0);
            if (r != 0)
                failf("ws_dispatch of another (empty) dispatcher in a callback: %d (%s)", r,
                      ws_last_error());
        }
        for (k = 0; k < MSG_COUNT; k++) {
            r = send_message(socket, c->id, k);
            if (r != WS_OK)
                failf("socket %d: sending message %d: %d (%s)", c->id, k, r, ws_last_error());
        }
        break;
    case WS_EVENT_MESSAGE:
        if (!c->opened || c->closes)
            failf("socket %d: message outside open..close", c->id);
        check_echo(c, ev);
        if (c->received == MSG_COUNT && (r = ws_close_ex(socket, 1000, "done")) != WS_OK)
            failf("socket %d: ws_close_ex: %d (%s)", c->id, r, ws_last_error());
        break;
    case WS_EVENT_ERROR:
        c->errors++;
        failf("socket %d: error event %d: %s", c->id, ev->error_code, ev->reason);
        break;
    case WS_EVENT_CLOSE:
        c->closes++;
        if (c->closes != 1 || ev->code != 1000 || !ev->was_clean || c->received != MSG_COUNT)
            failf("socket %d: close #%d code %u clean %d after %d of %d echoes", c->id, c->closes,
                  ev->code, ev->was_clean, c->received, MSG_COUNT);
        if (ws_ready_state(socket) != WS_CLOSED)
            failf("socket %d: ready state %d in the close callback", c->id, ws_ready_state(socket));
        if (c->self_free) {
            /* From inside its own callback: does not wait for itself. */
            r = ws_free(socket);
            if (r != WS_OK)
                failf("socket %d: ws_free from its close callback: %d (%s)", c->id, r,
                      ws_last_error());
            c->freed = true;
        }
        break;
    default:
        failf("socket %d: unknown event kind %u", c->id, ev->kind);
        break;
    }
}

static void on_event(ws_handle socket, const ws_event *ev, void *userdata) {
    handle_event(socket, ev, userdata);
}

static void on_io_event(ws_handle socket, const ws_event *ev, void *userdata) {
    pthread_mutex_lock(&io_lock);
    handle_event(socket, ev, userdata);
    pthread_mutex_unlock(&io_lock);
}

static void on_finalize(void *userdata) {
    struct binding *b = userdata;
    const struct conn *c = b->conn;
    pthread_t self = pthread_self();
    bool ok;
    b->finalized++;
    if (c->role == ROLE_IO) /* the freeing thread, or the IO thread after a call */
        ok = pthread_equal(self, main_thread) || (io_thread_known && pthread_equal(self, io_thread));
    else
        ok = on_its_thread(c);
    if (!ok)
        b->wrong_thread++;
}

static void on_io_finalize(void *userdata) {
    pthread_mutex_lock(&io_lock);
    on_finalize(userdata);
    pthread_mutex_unlock(&io_lock);
}

static atomic_int finalizers_checked; /* main and second threads */

static void check_finalized(struct conn *c, const char *when) {
    int k;
    for (k = 0; k < 4; k++) {
        const struct binding *b = &c->bindings[k];
        if (b->finalized != 1 || b->wrong_thread != 0)
            failf("socket %d: finalizer of kind %u ran %d time(s), %d on a wrong thread, %s",
                  c->id, b->kind, b->finalized, b->wrong_thread, when);
    }
    c->finalizers_known = true;
    atomic_fetch_add(&finalizers_checked, 4);
}

/* Opens and binds c (for the IO socket the caller holds io_lock). */
static void open_conn(struct conn *c, const ws_options *options) {
    c->ws = ws_open_ex(url, options);
    if (c->ws == 0) {
        printf("FAIL: socket %d: ws_open_ex: %s\n", c->id, ws_last_error());
        exit(1);
    }
}

static void bind_conn(struct conn *c, ws_handle ws) {
    bool io = c->role == ROLE_IO;
    int k, r;
    for (k = 0; k < 4; k++) {
        r = ws_bind_ex(ws, (ws_event_kind)(k + 1), io ? on_io_event : on_event, &c->bindings[k],
                       io ? on_io_finalize : on_finalize);
        if (r != WS_OK) {
            printf("FAIL: socket %d: ws_bind_ex: %d (%s)\n", c->id, r, ws_last_error());
            exit(1);
        }
    }
}

/* From outside callbacks, on the socket's own thread. */
static void free_conn(struct conn *c) {
    int r = ws_free(c->ws);
    if (r != WS_OK)
        failf("socket %d: ws_free: %d (%s)", c->id, r, ws_last_error());
    c->freed = true;
    check_finalized(c, "by the time ws_free returned");
    if (ws_ready_state(c->ws) != WS_ERR_INVALID_HANDLE)
        failf("socket %d: handle still valid after ws_free", c->id);
}

/* After a dispatch: frees what closed (the held one stays), and checks
 * the finalizers of sockets that freed themselves. True when all closed. */
static bool tend(struct conn **conns, int n) {
    int i, closed = 0;
    for (i = 0; i < n; i++) {
        struct conn *c = conns[i];
        if (c->closes == 0)
            continue;
        closed++;
        if (c->self_free && !c->finalizers_known)
            check_finalized(c, "after freeing itself from its close callback");
        else if (!c->self_free && !c->held && !c->freed)
            free_conn(c);
    }
    return closed == n;
}

/* ------------------------------------------------------------ killers */

struct killer;

struct kbinding {
    struct killer *killer;
    ws_event_kind kind;
    atomic_int finalized;
};

/* Two sockets, one per dispatcher thread, that free each other from inside
 * their callbacks while both callbacks run. */
struct killer {
    const char *name;
    int role;
    ws_dispatcher dispatcher;
    struct killer *other;
    struct kbinding bindings[4];
    _Atomic(ws_handle) ws;
    int echoes;                    /* its own thread only */
    atomic_int inside;             /* in the callback that frees the other */
    atomic_int freed_by_other;     /* the other's ws_free(this) returned */
    atomic_int done;               /* freed the other */
    atomic_int finalizer_elsewhere;
    atomic_int late_calls; /* callbacks started after freed_by_other */
    double free_took;      /* its own thread; main reads after the join */
};

static struct killer k1, k2;

static void killer_init(struct killer *k, const char *name, int role, ws_dispatcher d,
                        struct killer *other) {
    int i;
    k->name = name;
    k->role = role;
    k->dispatcher = d;
    k->other = other;
    for (i = 0; i < 4; i++) {
        k->bindings[i].killer = k;
        k->bindings[i].kind = (ws_event_kind)(i + 1);
    }
}

/* Spins until *flag is set, for at most SPIN_DEADLINE_S. */
static bool spin_until(atomic_int *flag, const struct killer *k, const char *what) {
    double deadline = now_s() + SPIN_DEADLINE_S;
    while (!atomic_load(flag)) {
        if (now_s() > deadline) {
            failf("%s: waited %d s for %s", k->name, SPIN_DEADLINE_S, what);
            return false;
        }
        nap_ms(1);
    }
    return true;
}

static void meet_and_free(struct killer *k, ws_handle self) {
    struct killer *o = k->other;
    ws_handle victim;
    double t0;
    int r;

    atomic_store(&k->inside, 1);
    if (!spin_until(&o->inside, k, "the other killer to enter its callback"))
        return;
    /* Both threads are inside a callback now, and neither returns before
     * both frees have: each ws_free meets the other's running callback. */
    victim = atomic_load(&o->ws);
    t0 = now_s();
    r = ws_free(victim);
    k->free_took = now_s() - t0;
    if (r != WS_OK)
        failf("%s: ws_free of the other thread's socket from a callback: %d (%s)", k->name, r,
              ws_last_error());
    atomic_store(&o->freed_by_other, 1);
    atomic_store(&k->done, 1);
    if (!spin_until(&o->done, k, "the other killer's ws_free"))
        return;
    /* This socket was freed by the other thread while this callback ran. */
    if (ws_send(self, "after free") != WS_ERR_INVALID_HANDLE)
        failf("%s: ws_send on its handle freed by the other thread did not fail", k->name);
}

static void on_killer_event(ws_handle socket, const ws_event *ev, void *userdata) {
    struct kbinding *b = userdata;
    struct killer *k = b->killer;
    char want[64];
    int r, i;
    bool right = k->role == ROLE_MAIN ? pthread_equal(pthread_self(), main_thread)
                                      : pthread_equal(pthread_self(), second_self);

    if (!right)
        failf("%s: callback on the wrong thread", k->name);
    if (atomic_load(&k->freed_by_other)) {
        atomic_fetch_add(&k->late_calls, 1);
        failf("%s: a callback (event %u) started after ws_free returned", k->name, ev->kind);
        return;
    }
    if (ev->kind != b->kind)
        failf("%s: event %u given to the callback bound to %u", k->name, ev->kind, b->kind);
    if ((r = ws_dispatch(k->dispatcher, 0, 0)) != WS_ERR_INVALID_STATE)
        failf("%s: nested ws_dispatch gave %d", k->name, r);
    switch (ev->kind) {
    case WS_EVENT_OPEN:
        snprintf(want, sizeof want, "%s ping 1", k->name);
        if ((r = ws_send(socket, want)) != WS_OK)
            failf("%s: ws_send: %d (%s)", k->name, r, ws_last_error());
        break;
    case WS_EVENT_MESSAGE:
        k->echoes++;
        snprintf(want, sizeof want, "%s ping %d", k->name, k->echoes);
        if (k->echoes > KILLER_ECHOES || ev->is_binary || strcmp((const char *)ev->data, want) != 0) {
            failf("%s: echo %d is \"%s\"", k->name, k->echoes, (const char *)ev->data);
            break;
        }
        if (k->echoes < KILLER_ECHOES) {
            snprintf(want, sizeof want, "%s ping %d", k->name, k->echoes + 1);
            if ((r = ws_send(socket, want)) != WS_OK)
                failf("%s: ws_send: %d (%s)", k->name, r, ws_last_error());
            break;
        }
        /* Echoes of these may arrive, but must never be delivered. */
        for (i = 0; i < KILLER_EXTRA; i++)
            if ((r = ws_send(socket, "never delivered")) != WS_OK)
                failf("%s: ws_send: %d (%s)", k->name, r, ws_last_error());
        meet_and_free(k, socket);
        break;
    default:
        failf("%s: unexpected event %u (%s)", k->name, ev->kind, ev->reason);
        break;
    }
}

static void on_killer_finalize(void *userdata) {
    struct kbinding *b = userdata;
    atomic_fetch_add(&b->finalized, 1);
    /* On the freeing thread, or on the owner's thread after a call. */
    if (!pthread_equal(pthread_self(), main_thread) && thread_role != ROLE_SECOND)
        atomic_fetch_add(&b->killer->finalizer_elsewhere, 1);
}

static void open_killer(struct killer *k, const ws_options *options) {
    ws_handle h = ws_open_ex(url, options);
    int i, r;
    if (h == 0) {
        printf("FAIL: %s: ws_open_ex: %s\n", k->name, ws_last_error());
        exit(1);
    }
    atomic_store(&k->ws, h); /* before any callback: the other frees it */
    for (i = 0; i < 4; i++) {
        r = ws_bind_ex(h, (ws_event_kind)(i + 1), on_killer_event, &k->bindings[i],
                       on_killer_finalize);
        if (r != WS_OK) {
            printf("FAIL: %s: ws_bind_ex: %d (%s)\n", k->name, r, ws_last_error());
            exit(1);
        }
    }
}

/* Both killers freed each other and every finalizer ran (once). */
static bool killers_settled(void) {
    const struct killer *ks[2] = {&k1, &k2};
    int i, j;
    for (i = 0; i < 2; i++) {
        if (!atomic_load(&ks[i]->done))
            return false;
        for (j = 0; j < 4; j++)
            if (atomic_load(&ks[i]->bindings[j].finalized) == 0)
                return false;
    }
    return true;
}

/* ------------------------------------------------------------ second thread */

static struct conn *second_conns[SECOND_SOCKETS];
static long second_events;

static void *second_main(void *arg) {
    ws_options *options = ws_options_new();
    bool reported = false;
    int i, n, r;

    (void)arg;
    thread_role = ROLE_SECOND;
    second_self = pthread_self();
    if (options == NULL || ws_options_set_dispatcher(options, d2) != WS_OK) {
        failf("second thread: options with d2: %s", ws_last_error());
        return NULL;
    }
    for (i = 0; i < SECOND_SOCKETS; i++) {
        struct conn *c = conn_new(100 + i, ROLE_SECOND, d2);
        c->held = i == 0;
        c->self_free = i == 1;
        second_conns[i] = c;
        open_conn(c, options);
        bind_conn(c, c->ws);
    }
    open_killer(&k2, options);
    ws_options_free(options);

    /* Ended by ws_dispatcher_wakeup from the main thread (a watchdog
     * bounds the whole run). */
    while (!atomic_load(&stop_second)) {
        n = ws_dispatch(d2, -1, 0);
        if (n < 0) {
            failf("second thread: ws_dispatch: %d (%s)", n, ws_last_error());
            break;
        }
        second_events += n;
        if (tend(second_conns, SECOND_SOCKETS) && atomic_load(&k2.done) && !reported) {
            reported = true;
            atomic_store(&second_done, 1);
        }
    }

    /* A socket still attached: refused; then freed. */
    if ((r = ws_dispatcher_free(d2)) != WS_ERR_INVALID_STATE)
        failf("second thread: ws_dispatcher_free with a socket attached gave %d", r);
    free_conn(second_conns[0]);
    return NULL;
}

/* ------------------------------------------------------------ main */

static struct conn *main_conns[MAIN_SOCKETS];
static struct conn *io_conn;

static bool io_closed(void) {
    bool closed;
    pthread_mutex_lock(&io_lock);
    closed = io_conn->closes > 0;
    pthread_mutex_unlock(&io_lock);
    return closed;
}

static void time_out(const char *what) {
    int i, closed = 0;
    for (i = 0; i < MAIN_SOCKETS; i++)
        closed += main_conns[i]->closes > 0;
    failf("timeout after %d s waiting for %s: %d/%d main sockets closed, IO socket %s, "
          "second thread %s, killers %s",
          RUN_DEADLINE_S, what, closed, MAIN_SOCKETS, io_closed() ? "closed" : "not closed",
          atomic_load(&second_done) ? "done" : "not done", killers_settled() ? "done" : "not done");
    exit(1);
}

static void expect(int got, int want, const char *what) {
    if (got != want)
        failf("%s: %d, expected %d (%s)", what, got, want, ws_last_error());
}

static bool readable(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

int main(int argc, char **argv) {
    pthread_t watchdog_thread;
    ws_options *options, *io_options;
    ws_dispatcher stale;
    struct pollfd pfd;
    double deadline;
    long main_events = 0, polls = 0;
    int fd, r, n, i, nested = 0, messages = 0;
    bool done = false;

    if (argc != 2) {
        fprintf(stderr, "usage: %s URL\n", argv[0]);
        return 2;
    }
    url = argv[1];
    main_thread = pthread_self();
    thread_role = ROLE_MAIN;
    atomic_store(&phase, "starting");
    if (pthread_create(&watchdog_thread, NULL, watchdog, NULL) != 0) {
        printf("FAIL: pthread_create\n");
        return 1;
    }

    /* Dispatchers, and what a stale one gives. */
    d1 = ws_dispatcher_new();
    d2 = ws_dispatcher_new();
    d3 = ws_dispatcher_new();
    stale = ws_dispatcher_new();
    if (d1 == 0 || d2 == 0 || d3 == 0 || stale == 0 || d1 == d2 || d2 == d3) {
        printf("FAIL: ws_dispatcher_new: %s\n", ws_last_error());
        return 1;
    }
    fd = ws_dispatcher_fd(d1);
    if (fd < 0 || ws_dispatcher_fd(d2) < 0 || ws_dispatcher_fd(d2) == fd) {
        printf("FAIL: ws_dispatcher_fd: %d (%s)\n", fd, ws_last_error());
        return 1;
    }
    expect(ws_dispatcher_free(stale), WS_OK, "ws_dispatcher_free, no socket");
    expect(ws_dispatch(stale, 0, 0), WS_ERR_INVALID_HANDLE, "ws_dispatch of a freed dispatcher");
    expect(ws_dispatcher_fd(stale) < 0, 1, "ws_dispatcher_fd of a freed dispatcher is negative");

    /* Level-triggered: readable exactly while something is pending. */
    if (readable(fd))
        failf("a new dispatcher's descriptor is readable");
    expect(ws_dispatcher_wakeup(d1), WS_OK, "ws_dispatcher_wakeup");
    if (!readable(fd))
        failf("not readable after ws_dispatcher_wakeup");
    expect(ws_dispatch(d1, 0, 0), 0, "ws_dispatch after a wakeup, nothing queued");
    if (readable(fd))
        failf("still readable after the wakeup was dispatched");

    /* Options: a stale dispatcher is refused, 0 goes back to the IO thread. */
    options = ws_options_new();
    io_options = ws_options_new();
    if (options == NULL || io_options == NULL) {
        printf("FAIL: ws_options_new\n");
        return 1;
    }
    expect(ws_options_set_dispatcher(options, stale), WS_ERR_INVALID_HANDLE,
           "ws_options_set_dispatcher with a freed dispatcher");
    expect(ws_options_set_dispatcher(options, d1), WS_OK, "ws_options_set_dispatcher");
    expect(ws_options_set_dispatcher(io_options, d1), WS_OK, "ws_options_set_dispatcher");
    expect(ws_options_set_dispatcher(io_options, 0), WS_OK, "ws_options_set_dispatcher(0)");

    killer_init(&k1, "killer-main", ROLE_MAIN, d1, &k2);
    killer_init(&k2, "killer-second", ROLE_SECOND, d2, &k1);

    /* The IO-thread socket: its fields only under io_lock from now on. */
    atomic_store(&phase, "opening the sockets");
    io_conn = conn_new(200, ROLE_IO, 0);
    pthread_mutex_lock(&io_lock);
    open_conn(io_conn, io_options);
    pthread_mutex_unlock(&io_lock);
    bind_conn(io_conn, io_conn->ws); /* its callbacks need io_lock: not held */
    ws_options_free(io_options);

    for (i = 0; i < MAIN_SOCKETS; i++) {
        struct conn *c = conn_new(i, ROLE_MAIN, d1);
        c->held = i == 0;
        c->self_free = i % 5 == 4;
        main_conns[i] = c;
        open_conn(c, options);
        bind_conn(c, c->ws);
    }
    open_killer(&k1, options);
    ws_options_free(options);

    if (pthread_create(&second_thread, NULL, second_main, NULL) != 0) {
        printf("FAIL: pthread_create\n");
        return 1;
    }

    /* The host loop: poll the descriptor, dispatch when readable. */
    atomic_store(&phase, "in the main thread's poll loop");
    deadline = now_s() + RUN_DEADLINE_S;
    pfd.fd = fd;
    pfd.events = POLLIN;
    while (!done) {
        if (failure_count() > 0)
            return 1;
        if (now_s() > deadline)
            time_out("every socket's echoes and close");
        pfd.revents = 0;
        r = poll(&pfd, 1, 20);
        if (r < 0 && errno != EINTR) {
            printf("FAIL: poll: %s\n", strerror(errno));
            return 1;
        }
        if (r > 0) {
            if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) {
                printf("FAIL: poll revents 0x%x\n", (unsigned)pfd.revents);
                return 1;
            }
            polls++;
            n = ws_dispatch(d1, 0, 0);
            if (n < 0) {
                failf("ws_dispatch: %d (%s)", n, ws_last_error());
                return 1;
            }
            main_events += n;
        }
        done = tend(main_conns, MAIN_SOCKETS);
        done = io_closed() && done;
        done = killers_settled() && done;
        done = atomic_load(&second_done) && done;
    }

    /* Ends the second thread's ws_dispatch(d2, -1, 0) loop. */
    atomic_store(&phase, "ending the second thread");
    atomic_store(&stop_second, 1);
    expect(ws_dispatcher_wakeup(d2), WS_OK, "ws_dispatcher_wakeup(d2)");
    if (pthread_join(second_thread, NULL) != 0) {
        printf("FAIL: pthread_join\n");
        return 1;
    }

    /* The killers: each freed by the other thread, from a callback. */
    atomic_store(&phase, "checking and freeing");
    for (i = 0; i < 2; i++) {
        struct killer *k = i == 0 ? &k1 : &k2;
        int j;
        for (j = 0; j < 4; j++)
            if (atomic_load(&k->bindings[j].finalized) != 1)
                failf("%s: finalizer of kind %d ran %d times", k->name, j + 1,
                      atomic_load(&k->bindings[j].finalized));
        atomic_fetch_add(&finalizers_checked, 4);
        if (atomic_load(&k->finalizer_elsewhere) != 0)
            failf("%s: a finalizer ran on neither dispatcher thread", k->name);
        if (atomic_load(&k->late_calls) != 0)
            failf("%s: callbacks after it was freed", k->name);
        if (k->free_took > 10.0)
            failf("%s: ws_free from a callback took %.1f s", k->name, k->free_took);
        expect(ws_free(atomic_load(&k->ws)), WS_ERR_INVALID_HANDLE, "ws_free of a freed killer");
    }

    /* d1: refused while a socket is attached, freed once none is. */
    expect(ws_dispatcher_free(d1), WS_ERR_INVALID_STATE, "ws_dispatcher_free(d1), a socket attached");
    free_conn(main_conns[0]);
    expect(ws_dispatcher_free(d1), WS_OK, "ws_dispatcher_free(d1)");
    expect(ws_dispatch(d1, 0, 0), WS_ERR_INVALID_HANDLE, "ws_dispatch of freed d1");
    expect(ws_dispatcher_wakeup(d1), WS_ERR_INVALID_HANDLE, "ws_dispatcher_wakeup of freed d1");
    expect(ws_dispatcher_free(d2), WS_OK, "ws_dispatcher_free(d2), all its sockets freed");
    expect(ws_dispatcher_free(d3), WS_OK, "ws_dispatcher_free(d3)");

    /* The IO-thread socket, freed from the main thread. */
    expect(ws_free(io_conn->ws), WS_OK, "ws_free of the IO-thread socket");
    pthread_mutex_lock(&io_lock);
    io_conn->freed = true;
    check_finalized(io_conn, "by the time ws_free returned");
    if (io_conn->received != MSG_COUNT)
        failf("IO-thread socket: %d echoes", io_conn->received);
    messages += io_conn->received;
    pthread_mutex_unlock(&io_lock);

    atomic_store(&phase, "in ws_shutdown");
    ws_shutdown();

    for (i = 0; i < MAIN_SOCKETS; i++) {
        messages += main_conns[i]->received;
        nested += main_conns[i]->nested_refused;
        free(main_conns[i]);
    }
    for (i = 0; i < SECOND_SOCKETS; i++) {
        messages += second_conns[i]->received;
        nested += second_conns[i]->nested_refused;
        free(second_conns[i]);
    }
    free(io_conn);

    pthread_mutex_lock(&watch_lock);
    finished = 1;
    pthread_cond_signal(&watch_cond);
    pthread_mutex_unlock(&watch_lock);
    pthread_join(watchdog_thread, NULL);

    if (failure_count() > 0)
        return 1;
    printf("OK: %d sockets on a poll() loop (main thread), %d on a second dispatcher thread, 1 on "
           "the IO thread: %d messages echoed byte for byte and in order (up to %d bytes); %ld+%ld "
           "events dispatched (%ld polls); %d finalizers once each on the right thread; killers "
           "freed each other from callbacks on two threads (%.3f s, %.3f s); nested ws_dispatch "
           "refused %d times; dispatchers freed\n",
           MAIN_SOCKETS, SECOND_SOCKETS, messages, BIG_BINARY, main_events, second_events, polls,
           atomic_load(&finalizers_checked), k1.free_took, k2.free_took, nested);
    return 0;
}
