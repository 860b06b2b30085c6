/*
 * Tests of bindings/cpp/wsembed.hpp against a WebSocket echo server.
 *
 *   wrapper_test ws://127.0.0.1:PORT/ [ws://127.0.0.1:PORT2/]
 *
 * The first URL is an echo server without compression (the project's); the
 * optional second one an echo server that agrees to permessage-deflate
 * (Python websockets), for the deflate test.
 *
 * Built with -std=c++17 -Wall -Wextra -Werror together with
 * second_unit.cc (the double-include check), and run plainly, under
 * valgrind and as an AddressSanitizer build by tests/run-c.sh. Prints one
 * line per test and ends with "cpp: N passed, M failed"; exits non-zero on
 * any failure.
 */
#include "wsembed.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#if __cplusplus >= 202002L
#include <span>
#endif

#include "test_util.hh"

bool second_unit_echo(const std::string &url);

namespace {

using namespace std::chrono_literals;
using wsembed::CloseEvent;
using wsembed::Error;
using wsembed::ErrorEvent;
using wsembed::Message;
using wsembed::Options;
using wsembed::ReconnectingEvent;
using wsembed::SocketRef;
using wsembed::WebSocket;

std::string g_url;
std::string g_deflate_url; /* "" when none was given */

static_assert(!std::is_copy_constructible_v<WebSocket>, "WebSocket owns its handle");
static_assert(!std::is_copy_assignable_v<WebSocket>, "WebSocket owns its handle");
static_assert(std::is_nothrow_move_constructible_v<WebSocket>, "moves never throw");
static_assert(std::is_nothrow_move_assignable_v<WebSocket>, "moves never throw");
static_assert(!std::is_copy_constructible_v<wsembed::Options>, "Options owns ws_options");
static_assert(std::is_nothrow_move_constructible_v<wsembed::Options>, "moves never throw");
static_assert(std::is_base_of_v<std::runtime_error, Error>, "errors are runtime_errors");
static_assert(!std::is_copy_constructible_v<Message>, "a Message is a view: not kept by mistake");

/* Counts live copies of a callable's capture: every box the wrapper
 * allocates must be deleted by the C finalizer by the time the IO thread
 * is joined. */
struct Tracker {
    static std::atomic<int> &live() {
        static std::atomic<int> count{0};
        return count;
    }
    Tracker() { live()++; }
    Tracker(const Tracker &) { live()++; }
    Tracker(Tracker &&) noexcept { live()++; }
    Tracker &operator=(const Tracker &) = default;
    ~Tracker() { live()--; }
};

/* Everything one socket's callbacks report. */
struct Record {
    test::Waiter waiter;
    int opens = 0;
    std::vector<std::string> texts;
    std::vector<std::vector<std::uint8_t>> binaries;
    std::vector<ErrorEvent> errors;
    std::vector<CloseEvent> closes;

    /* Binds all four events, in the (const Event &) form. */
    void watch(WebSocket &ws) {
        Tracker tracker;
        ws.on_open([this, tracker] { waiter.update([&] { opens++; }); })
            .on_message([this, tracker](const Message &m) {
                waiter.update([&] {
                    if (m.is_binary())
                        binaries.push_back(m.bytes());
                    else
                        texts.push_back(m.str());
                });
            })
            .on_error([this, tracker](const ErrorEvent &e) { waiter.update([&] { errors.push_back(e); }); })
            .on_close([this, tracker](const CloseEvent &e) { waiter.update([&] { closes.push_back(e); }); });
    }
    bool wait_open() { return waiter.wait([&] { return opens > 0 || !closes.empty(); }) && opens == 1; }
    bool wait_messages(std::size_t n) {
        return waiter.wait([&] { return texts.size() + binaries.size() >= n || !closes.empty(); }) &&
               texts.size() + binaries.size() >= n;
    }
    bool wait_close() { return waiter.wait([&] { return !closes.empty(); }); }
};

/* Runs f, which must throw wsembed::Error with `status`. */
template <class F> bool throws(int status, F f) {
    try {
        f();
    } catch (const Error &e) {
        if (e.status() != status)
            std::printf("  status %d (%s), expected %d\n", e.status(), e.what(), status);
        return e.status() == status && std::strlen(e.what()) > 0;
    }
    return false;
}

/* A port on 127.0.0.1 that refuses connections: bound, then released. */
int refused_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr);
    getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len);
    close(fd);
    return ntohs(addr.sin_port);
}

/* A server for one connection on 127.0.0.1: reads the request, writes
 * `answer` (a refusal, say), then waits for the client to hang up. */
class OneAnswerServer {
public:
    explicit OneAnswerServer(std::string answer) : answer_(std::move(answer)) {
        listener_ = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        bind(listener_, reinterpret_cast<sockaddr *>(&addr), sizeof addr);
        listen(listener_, 1);
        getsockname(listener_, reinterpret_cast<sockaddr *>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        /* accept() and recv() give up at the deadline, so a test that
         * failed before connecting cannot hang the destructor's join. */
        timeval deadline{static_cast<time_t>(test::deadline.count()), 0};
        setsockopt(listener_, SOL_SOCKET, SO_RCVTIMEO, &deadline, sizeof deadline);
        thread_ = std::thread([this] { serve(); });
    }
    ~OneAnswerServer() {
        thread_.join();
        ::close(listener_);
    }
    OneAnswerServer(const OneAnswerServer &) = delete;
    OneAnswerServer &operator=(const OneAnswerServer &) = delete;

    std::string url() const { return "ws://127.0.0.1:" + std::to_string(port_) + "/"; }

private:
    void serve() {
        const int fd = accept(listener_, nullptr, nullptr);
        if (fd < 0)
            return;
        timeval deadline{static_cast<time_t>(test::deadline.count()), 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &deadline, sizeof deadline);
        std::string request;
        char buf[4096];
        ssize_t n = 0;
        while (request.find("\r\n\r\n") == std::string::npos && (n = recv(fd, buf, sizeof buf, 0)) > 0)
            request.append(buf, static_cast<std::size_t>(n));
        for (std::size_t sent = 0; n > 0 && sent < answer_.size(); sent += static_cast<std::size_t>(n))
            n = send(fd, answer_.data() + sent, answer_.size() - sent, MSG_NOSIGNAL);
        while (recv(fd, buf, sizeof buf, 0) > 0) {
        }
        ::close(fd);
    }

    std::string answer_;
    int listener_ = -1;
    int port_ = 0;
    std::thread thread_;
};

void echo_cycle() {
    Record rec;
    WebSocket ws(g_url, wsembed::Options().connect_timeout(20s).close_timeout(10s));
    rec.watch(ws);
    /* The (SocketRef, const Event &) form, bound second: runs after watch's. */
    ws.on_open([](SocketRef s) { s.send("hello from C++"); });

    CHECK(rec.wait_open());
    CHECK(ws.ready_state() == wsembed::ReadyState::Open);
    CHECK(ws.url() == g_url);
    CHECK(ws.protocol().empty());
    CHECK(ws.extensions().empty());
    CHECK(rec.wait_messages(1));

    const std::uint8_t raw[4] = {0, 1, 254, 255};
    ws.send_binary(raw, sizeof raw);
    ws.send_binary(std::vector<std::uint8_t>{9, 8, 7});
    ws.send_binary(std::array<std::byte, 2>{std::byte{0xca}, std::byte{0xfe}});
    ws.send(std::string_view("a\0b", 3)); /* a string_view may hold a NUL */
#if __cplusplus >= 202002L
    const std::byte span_bytes[] = {std::byte{1}, std::byte{2}};
    ws.send_binary(std::span<const std::byte>(span_bytes));
    const std::size_t expected = 6;
#else
    const std::size_t expected = 5;
#endif
    CHECK(rec.wait_messages(expected));
    rec.waiter.read([&] {
        CHECK(rec.texts.size() == 2);
        CHECK(rec.texts.size() == 2 && rec.texts[0] == "hello from C++");
        CHECK(rec.texts.size() == 2 && rec.texts[1] == std::string("a\0b", 3));
        CHECK(rec.binaries.size() == expected - 2);
        CHECK(rec.binaries.size() >= 3 && rec.binaries[0] == (std::vector<std::uint8_t>{0, 1, 254, 255}));
        CHECK(rec.binaries.size() >= 3 && rec.binaries[1] == (std::vector<std::uint8_t>{9, 8, 7}));
        CHECK(rec.binaries.size() >= 3 && rec.binaries[2] == (std::vector<std::uint8_t>{0xca, 0xfe}));
        return 0;
    });

    ws.close(1000, "bye");
    CHECK(rec.wait_close());
    rec.waiter.read([&] {
        CHECK(rec.closes.size() == 1);
        CHECK(!rec.closes.empty() && rec.closes[0].code == 1000 && rec.closes[0].was_clean);
        CHECK(rec.errors.empty());
        return 0;
    });
    CHECK(ws.ready_state() == wsembed::ReadyState::Closed);
    CHECK(throws(WS_ERR_INVALID_STATE, [&] { ws.send("late"); }));
    ws.close(); /* closing twice is not an error */
}

void exceptions() {
    /* Synchronous failures of the constructor. */
    CHECK(throws(WS_ERR_INVALID_URL, [] { WebSocket ws("http://127.0.0.1/"); }));
    CHECK(throws(WS_ERR_INVALID_URL, [] { WebSocket ws("not a url"); }));
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [] { WebSocket ws(std::string_view("ws://a\0b/", 9)); }));
    if (!wsembed::has_tls())
        CHECK(throws(WS_ERR_UNSUPPORTED, [] { WebSocket ws("wss://127.0.0.1:1/"); }));
    try {
        WebSocket ws("ftp://127.0.0.1/");
        CHECK(false);
    } catch (const std::runtime_error &e) { /* catchable as the standard base */
        CHECK(std::strlen(e.what()) > 0);
    }

    /* Option setters. */
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [] { wsembed::Options().header("Host", "example.org"); }));
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [] { wsembed::Options().header("X-Ok", "line\nbreak"); }));
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [] { wsembed::Options().protocol("not a token"); }));
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [] { wsembed::Options().connect_timeout(0ms); }));
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [] { wsembed::Options().connect_timeout(-5ms); }));
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [] { wsembed::Options().close_timeout(std::chrono::hours(24 * 60)); }));
    if (wsembed::has_tls())
        wsembed::Options().insecure_skip_verify(false);
    else
        CHECK(throws(WS_ERR_UNSUPPORTED, [] { wsembed::Options().ca_file("/nonexistent/ca.pem"); }));

    /* Calls on a live socket. */
    Record rec;
    WebSocket ws(g_url, wsembed::Options().max_message_size(8));
    rec.watch(ws);
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [&] { ws.on_message(std::function<void(const Message &)>()); }));
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [&] { ws.on_open(static_cast<void (*)(SocketRef)>(nullptr)); }));
    CHECK(rec.wait_open());
    CHECK(throws(WS_ERR_INVALID_UTF8, [&] { ws.send("\xff\xfe"); }));
    CHECK(throws(WS_ERR_TOO_LARGE, [&] { ws.send("123456789"); }));
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [&] { ws.close(1001); }));
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [&] { ws.close(1000, std::string(124, 'r')); }));
    ws.send("12345678");
    CHECK(rec.wait_messages(1));
    ws.close(4000, "custom");
    CHECK(rec.wait_close());

    /* A refused connection arrives as events, not as an exception. */
    Record refused;
    WebSocket bad("ws://127.0.0.1:" + std::to_string(refused_port()) + "/");
    refused.watch(bad);
    CHECK(refused.wait_close());
    refused.waiter.read([&] {
        CHECK(refused.opens == 0);
        CHECK(refused.errors.size() == 1 && refused.errors[0].code == WS_ERR_CONNECT);
        CHECK(refused.errors.size() == 1 && refused.errors[0].http_status == 0);
        CHECK(refused.closes.size() == 1 && refused.closes[0].code == 1006 && !refused.closes[0].was_clean);
        return 0;
    });
    CHECK(throws(WS_ERR_INVALID_STATE, [&] { bad.send("x"); }));
    /* No answer ever came: status 0 and no headers, without an exception. */
    CHECK(bad.response_status() == 0);
    CHECK(!bad.response_header("Server"));
    CHECK(bad.response_body().empty());
}

void handshake_answer() {
    /* A refusal: its status, headers (repeated, empty, absent) and a binary
     * body, read in the error callback and after the close. */
    const std::string body("Token expired.\0\xff", 16);
    OneAnswerServer server("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"api\"\r\n"
                           "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Empty:\r\nContent-Length: 16\r\n\r\n" +
                           body);
    int status_in_error = -1;
    std::optional<std::string> challenge;
    std::string body_in_error;
    Record rec;
    WebSocket ws(server.url());
    /* Bound before watch's: done by the time the close is recorded. */
    ws.on_error([&](SocketRef s, const ErrorEvent &) {
        status_in_error = s.response_status();
        challenge = s.response_header("www-authenticate");
        body_in_error = s.response_body();
    });
    rec.watch(ws);
    CHECK(rec.wait_close());
    rec.waiter.read([&] {
        CHECK(rec.opens == 0);
        CHECK(rec.errors.size() == 1 && rec.errors[0].code == WS_ERR_HANDSHAKE);
        CHECK(rec.errors.size() == 1 && rec.errors[0].http_status == 401);
        CHECK(rec.closes.size() == 1 && rec.closes[0].code == 1006);
        CHECK(status_in_error == 401);
        CHECK(challenge == std::string("Bearer realm=\"api\""));
        CHECK(body_in_error == body);
        return 0;
    });
    CHECK(ws.response_status() == 401);
    CHECK(ws.response_header("Set-Cookie") == std::string("a=1, b=2"));
    CHECK(ws.response_header("x-empty") == std::string());
    CHECK(!ws.response_header("Retry-After"));
    CHECK(ws.response_body() == body);
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [&] { ws.response_header(std::string_view("a\0b", 3)); }));

    /* A 101: the echo server's headers, read in the open callback. */
    int status_in_open = -1;
    std::optional<std::string> upgrade;
    Record open_rec;
    WebSocket open_ws(g_url);
    open_ws.on_open([&](SocketRef s) {
        status_in_open = s.response_status();
        upgrade = s.response_header("UPGRADE");
    });
    open_rec.watch(open_ws);
    CHECK(open_rec.wait_open());
    open_rec.waiter.read([&] {
        CHECK(status_in_open == 101);
        CHECK(upgrade == std::string("websocket"));
        return 0;
    });
    CHECK(open_ws.response_header("sec-websocket-accept").has_value());
    CHECK(!open_ws.response_header("X-Not-Sent"));
    CHECK(open_ws.response_body().empty());
    open_ws.close(1000, "done");
    CHECK(open_rec.wait_close());
    CHECK(open_ws.response_status() == 101);
}

void reconnect() {
    /* ws_reconnect on an open socket: a `reconnecting` event for the close
     * with 1000, then a second open on the same object. */
    Record rec;
    std::vector<ReconnectingEvent> drops;
    WebSocket ws(g_url, Options().reconnect(true).reconnect_delay(std::chrono::milliseconds(10),
                                                                  std::chrono::milliseconds(100)));
    ws.on_reconnecting([&](const ReconnectingEvent &e) { rec.waiter.update([&] { drops.push_back(e); }); });
    rec.watch(ws);
    CHECK(rec.wait_open());
    ws.set_header("X-Session", "2");
    ws.remove_header("X-Session");
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [&] { ws.set_header("Upgrade", "x"); }));
    ws.reconnect();
    CHECK(rec.waiter.wait([&] { return rec.opens == 2 || !rec.closes.empty(); }));
    rec.waiter.read([&] {
        CHECK(drops.size() == 1);
        CHECK(drops.size() == 1 && drops[0].code == 1000 && drops[0].was_clean);
        CHECK(drops.size() == 1 && drops[0].attempt == 1 && drops[0].delay_ms == 0 && drops[0].error_code == 0);
        return 0;
    });
    ws.send("after reconnecting");
    CHECK(rec.wait_messages(1));
    ws.close();
    CHECK(rec.wait_close());
    CHECK(throws(WS_ERR_INVALID_STATE, [&] { ws.reconnect(); }));

    /* Without the option there is nothing to reconnect. */
    Record plain_rec;
    WebSocket plain(g_url);
    plain_rec.watch(plain);
    CHECK(plain_rec.wait_open());
    CHECK(throws(WS_ERR_INVALID_STATE, [&] { plain.reconnect(); }));
}

void move_semantics() {
    Record rec;
    WebSocket a(g_url);
    rec.watch(a);
    CHECK(rec.wait_open());
    const ws_handle handle = a.capi();

    /* Move construction: the handle and its callbacks go along. */
    WebSocket b(std::move(a));
    CHECK(!a && a.capi() == 0);
    CHECK(b && b.capi() == handle);
    CHECK(throws(WS_ERR_INVALID_HANDLE, [&] { a.send("from a moved-from socket"); }));
    CHECK(throws(WS_ERR_INVALID_HANDLE, [&] { a.ready_state(); }));
    CHECK(throws(WS_ERR_INVALID_HANDLE, [&] { a.protocol(); }));
    CHECK(throws(WS_ERR_INVALID_HANDLE, [&] { a.extensions(); }));
    CHECK(throws(WS_ERR_INVALID_HANDLE, [&] { a.response_status(); }));
    CHECK(throws(WS_ERR_INVALID_HANDLE, [&] { a.response_header("Upgrade"); }));
    CHECK(throws(WS_ERR_INVALID_HANDLE, [&] { a.response_body(); }));
    CHECK(throws(WS_ERR_INVALID_HANDLE, [&] { a.on_open([] {}); }));
    b.send("after the move");
    CHECK(rec.wait_messages(1));

    /* Move assignment frees what the target held. */
    Record other;
    WebSocket c(g_url);
    other.watch(c);
    const ws_handle replaced = c.capi();
    c = std::move(b);
    CHECK(ws_ready_state(replaced) == WS_ERR_INVALID_HANDLE);
    CHECK(c.capi() == handle && !b);
    WebSocket &alias = c;
    c = std::move(alias); /* self-move keeps the socket */
    CHECK(c.capi() == handle);
    c.send("after the assignment");
    CHECK(rec.wait_messages(2));

    /* A vector that reallocates moves its sockets; each keeps working. */
    constexpr int count = 6;
    std::vector<std::unique_ptr<Record>> records;
    std::vector<WebSocket> sockets;
    for (int i = 0; i < count; i++) {
        records.push_back(std::make_unique<Record>());
        sockets.emplace_back(g_url);
        records.back()->watch(sockets.back());
        const std::string text = "socket " + std::to_string(i);
        sockets.back().on_open([text](SocketRef s) { s.send(text); });
    }
    for (int i = 0; i < count; i++) {
        CHECK(records[i]->wait_messages(1));
        records[i]->waiter.read([&] {
            CHECK(!records[i]->texts.empty() && records[i]->texts[0] == "socket " + std::to_string(i));
            return 0;
        });
    }
    /* release() hands the handle over; the caller frees it. */
    const ws_handle released = sockets.back().release();
    CHECK(!sockets.back() && ws_ready_state(released) >= 0);
    CHECK(ws_free(released) == WS_OK);
    sockets.clear(); /* frees the rest; the records outlive them */
}

/* Set once a socket is destroyed: a callback that runs after that would
 * also touch freed memory, which valgrind and ASan report. */
struct Flow {
    std::atomic<bool> destroyed{false};
    std::atomic<int> late_calls{0};
    std::atomic<int> messages{0};
    test::Waiter waiter;
};

void destruction_while_messages_flow() {
    for (int round = 0; round < 4; round++) {
        auto flow = std::make_unique<Flow>();
        Flow *f = flow.get();
        Tracker tracker;
        const int live_before = Tracker::live();
        auto ws = std::make_unique<WebSocket>(g_url);
        /* Each message is sent back: the echo keeps the socket busy. */
        ws->on_message([f, tracker](SocketRef s, const Message &m) {
            if (f->destroyed)
                f->late_calls++;
            f->waiter.update([&] { f->messages++; });
            try {
                s.send(m.text());
            } catch (const Error &) {
                /* closing: the ping-pong just stops */
            }
        });
        ws->on_open([](SocketRef s) {
            for (int i = 0; i < 8; i++)
                s.send("ping-pong " + std::to_string(i));
        });
        /* Another thread sends too, through a SocketRef, until refused. */
        const SocketRef ref = ws->ref();
        std::thread sender([ref] {
            for (;;) {
                try {
                    ref.send_binary(std::string(64, 'x'));
                } catch (const Error &e) {
                    if (e.status() == WS_ERR_INVALID_HANDLE)
                        return;
                }
                std::this_thread::yield();
            }
        });
        CHECK(f->waiter.wait([&] { return f->messages >= 100; }));
        if (round % 2 == 0) {
            ws.reset();
        } else {
            /* Destroyed from a thread other than the one that made it. */
            std::thread([&ws] { ws.reset(); }).join();
        }
        f->destroyed = true;
        /* ws_free ran the finalizers before returning: the callables and
         * their captures are gone. */
        CHECK(Tracker::live() == live_before);
        sender.join();
        CHECK(f->late_calls == 0);
        flow.reset();
    }

    /* Destroyed from inside its own callback: ws_free does not wait for the
     * running callback, and no other callback of it runs afterwards. */
    auto flow = std::make_unique<Flow>();
    Flow *f = flow.get();
    auto holder = std::make_unique<WebSocket>(g_url);
    WebSocket *raw = holder.get();
    std::unique_ptr<WebSocket> *slot = &holder;
    bool reset_done = false;
    raw->on_open([](SocketRef s) {
        for (int i = 0; i < 20; i++)
            s.send("burst");
    });
    raw->on_message([f, slot, &reset_done](const Message &) {
        if (f->destroyed)
            f->late_calls++;
        if (f->messages++ == 5) {
            slot->reset();
            f->destroyed = true;
            f->waiter.update([&] { reset_done = true; });
        }
    });
    CHECK(f->waiter.wait([&] { return reset_done; }));
    CHECK(f->late_calls == 0);
    CHECK(!holder);
    flow.reset();
}

/* Text that deflate shrinks, with bytes that change along it, so that a
 * wrong window or a lost byte shows in the echo. */
std::string compressible(std::size_t size) {
    std::string out;
    for (int i = 0; out.size() < size; i++)
        out += "{\"id\":" + std::to_string(i) + ",\"name\":\"row " + std::to_string(i * 7919 % 1000) + "\"},";
    out.resize(size);
    return out;
}

void deflate() {
    if (!wsembed::has_deflate()) {
        CHECK(throws(WS_ERR_UNSUPPORTED, [] { wsembed::Options().deflate(true); }));
        CHECK(throws(WS_ERR_UNSUPPORTED, [] { wsembed::Options().deflate_params(10, 0, false, false); }));
        CHECK(throws(WS_ERR_UNSUPPORTED, [] { wsembed::Options().deflate_threshold(0); }));
        CHECK(throws(WS_ERR_UNSUPPORTED, [] { wsembed::Options().deflate_level(6); }));
        return;
    }
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [] { wsembed::Options().deflate_params(8, 0, false, false); }));
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [] { wsembed::Options().deflate_params(16, 0, false, false); }));
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [] { wsembed::Options().deflate_params(0, 7, false, false); }));
    /* 266 would wrap to a valid 10 in the C call. */
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [] { wsembed::Options().deflate_params(266, 0, false, false); }));
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [] { wsembed::Options().deflate_params(0, -1, false, false); }));
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [] { wsembed::Options().deflate_level(10); }));
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [] { wsembed::Options().deflate_level(-1); }));

    const std::string text = compressible(200 * 1000);
    const std::vector<std::uint8_t> binary(text.begin(), text.end());
    auto echo = [&](const std::string &url, const wsembed::Options &options, std::string &extensions) {
        Record rec;
        WebSocket ws(url, options);
        rec.watch(ws);
        CHECK(rec.wait_open());
        extensions = ws.extensions();
        ws.send(text);
        ws.send_binary(binary);
        ws.send("small");
        CHECK(rec.wait_messages(3));
        rec.waiter.read([&] {
            CHECK(rec.texts.size() == 2 && rec.texts[0] == text && rec.texts[1] == "small");
            CHECK(rec.binaries.size() == 1 && rec.binaries[0] == binary);
            return 0;
        });
        ws.close(1000, "done");
        CHECK(rec.wait_close());
        rec.waiter.read([&] {
            CHECK(!rec.closes.empty() && rec.closes[0].was_clean && rec.errors.empty());
            return 0;
        });
        /* Still readable once closed. */
        CHECK(ws.extensions() == extensions);
    };

    /* The project's echo server does not compress: the offer is declined
     * and the socket works as without it. */
    std::string extensions = "unset";
    echo(g_url,
         wsembed::Options().deflate(true).deflate_params(10, 12, true, true).deflate_threshold(0).deflate_level(9),
         extensions);
    CHECK(extensions.empty());

    if (g_deflate_url.empty()) {
        std::printf("  (no deflate server given: agreement not tested)\n");
        return;
    }
    echo(g_deflate_url, wsembed::Options().deflate(false), extensions);
    CHECK(extensions.empty());
    echo(g_deflate_url, wsembed::Options().deflate(true), extensions);
    CHECK(extensions.rfind("permessage-deflate", 0) == 0);
    echo(g_deflate_url, wsembed::Options().deflate(true).deflate_params(10, 0, true, false).deflate_level(1),
         extensions);
    if (extensions.find("client_max_window_bits=10") == std::string::npos ||
        extensions.find("client_no_context_takeover") == std::string::npos)
        std::printf("  extensions: \"%s\"\n", extensions.c_str());
    CHECK(extensions.find("client_max_window_bits=10") != std::string::npos);
    CHECK(extensions.find("client_no_context_takeover") != std::string::npos);
}

/* Polls the socket's counters until pred(stats) holds or the deadline:
 * they are published by the IO thread, with no event to wait on. */
template <class P> bool wait_stats(const WebSocket &ws, P pred) {
    const auto until = std::chrono::steady_clock::now() + test::deadline;
    while (!pred(ws.stats())) {
        if (std::chrono::steady_clock::now() > until)
            return false;
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

void stats_and_ping() {
    Record rec;
    WebSocket ws(g_url, Options().happy_eyeballs_delay(100ms));
    rec.watch(ws);
    CHECK(rec.wait_open());
    const wsembed::Stats opened = ws.stats();
    CHECK(opened.size == sizeof(ws_stats));
    CHECK(opened.connections == 1);
    CHECK(opened.messages_sent == 0 && opened.messages_received == 0);
    CHECK(opened.bytes_sent > 0 && opened.bytes_received > 0); /* the handshake */

    const std::string texts[] = {"one", "two ✓", std::string(300, 'x')};
    const std::vector<std::uint8_t> binary{0, 1, 2, 255};
    std::uint64_t payload = binary.size();
    for (const auto &text : texts) {
        ws.send(text);
        payload += text.size();
    }
    ws.send_binary(binary);
    CHECK(rec.wait_messages(4));
    /* The received-message counts are published before each callback, the
     * other fields once per pass over the socket: wait for all of them. */
    CHECK(wait_stats(ws, [&](const wsembed::Stats &s) {
        return s.messages_sent >= 4 && s.messages_received >= 4 && s.frames_sent >= 4 && s.frames_received >= 4 &&
               s.payload_bytes_sent >= payload && s.bytes_sent > opened.bytes_sent + payload &&
               s.bytes_received > opened.bytes_received + payload;
    }));
    const wsembed::Stats after = ws.stats();
    CHECK(after.messages_sent == 4);
    CHECK(after.messages_received == 4);
    CHECK(after.payload_bytes_sent == payload);
    CHECK(after.payload_bytes_received == payload);
    CHECK(after.frames_sent >= 4 && after.frames_received >= 4);
    /* Masked frames with headers: more on the wire than the payload. */
    CHECK(after.bytes_sent > opened.bytes_sent + payload);
    CHECK(after.bytes_received > opened.bytes_received + payload);

    /* No ping answered yet; then one, timed by its pong. */
    CHECK(after.pings_sent == 0 && after.pongs_received == 0 && after.last_rtt_us == 0);
    ws.ping("rtt");
    CHECK(wait_stats(ws, [](const wsembed::Stats &s) { return s.pings_answered >= 1; }));
    const wsembed::Stats ponged = ws.stats();
    CHECK(ponged.pings_sent == 1 && ponged.pings_answered == 1);
    CHECK(ponged.pongs_received == 1);
    CHECK(ponged.last_rtt_us > 0);
    CHECK(ponged.messages_sent == 4 && ponged.messages_received == 4); /* a ping is no message */
    ws.ping(); /* empty payload */
    ws.ping(std::string(125, 'p'));
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [&] { ws.ping(std::string(126, 'p')); }));
    CHECK(wait_stats(ws, [](const wsembed::Stats &s) { return s.pings_answered >= 2; }));
    CHECK(ws.stats().pings_sent >= 2); /* not 3 if the empty ping was replaced before it went out */

    ws.close(1000, "done");
    CHECK(rec.wait_close());
    CHECK(throws(WS_ERR_INVALID_STATE, [&] { ws.ping(); }));
    /* Still readable once closed, from a SocketRef too. */
    const wsembed::Stats closed = ws.ref().stats();
    CHECK(closed.messages_sent == 4 && closed.connections == 1);
    CHECK(closed.frames_sent > after.frames_sent); /* pings and the close frame */

    WebSocket moved(std::move(ws));
    CHECK(throws(WS_ERR_INVALID_HANDLE, [&] { ws.stats(); }));
    CHECK(throws(WS_ERR_INVALID_HANDLE, [&] { ws.ping(); }));
    CHECK(moved.stats().messages_received == 4);
}

void happy_eyeballs() {
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [] { Options().happy_eyeballs_delay(-1ms); }));
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [] { Options().happy_eyeballs_delay(std::chrono::hours(24 * 60)); }));
    /* 0: one address at a time; 5 ms counts as 10; both connect. */
    for (const auto delay : {0ms, 5ms, 250ms}) {
        Record rec;
        WebSocket ws(g_url, Options().happy_eyeballs_delay(delay));
        rec.watch(ws);
        CHECK(rec.wait_open());
        ws.close();
        CHECK(rec.wait_close());
    }
}

/* Lines the log handler got, shared with the IO thread. */
struct LogLines {
    test::Waiter waiter;
    std::vector<std::tuple<int, ws_handle, std::string>> lines;

    std::size_t about(ws_handle socket) {
        return waiter.read([&] {
            std::size_t n = 0;
            for (const auto &line : lines)
                n += std::get<1>(line) == socket;
            return n;
        });
    }
};

/* Opens a socket to the echo server and closes it once open. */
ws_handle open_and_close() {
    Record rec;
    WebSocket ws(g_url);
    rec.watch(ws);
    CHECK(rec.wait_open());
    ws.close();
    CHECK(rec.wait_close());
    return ws.capi();
}

void log_handler() {
    const int live_before = Tracker::live();
    auto log = std::make_shared<LogLines>();
    {
        Tracker tracker;
        wsembed::set_log_handler(WS_LOG_INFO, [log, tracker](int level, ws_handle socket, std::string_view line) {
            log->waiter.update([&] { log->lines.emplace_back(level, socket, std::string(line)); });
        });
    }
    CHECK(Tracker::live() == live_before + 1); /* kept alive by the wrapper */

    const ws_handle first = open_and_close();
    CHECK(log->waiter.wait([&] {
        for (const auto &line : log->lines)
            if (std::get<1>(line) == first)
                return true;
        return false;
    }));
    log->waiter.read([&] {
        for (const auto &[level, socket, text] : log->lines) {
            CHECK(level >= WS_LOG_ERROR && level <= WS_LOG_INFO);
            CHECK(!text.empty());
            (void)socket;
        }
        return 0;
    });

    /* A refused level throws and leaves the handler in place. */
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [] { wsembed::set_log_handler(0, [](int, ws_handle, std::string_view) {}); }));
    CHECK(throws(WS_ERR_INVALID_ARGUMENT, [] { wsembed::set_log_handler(5, [](int, ws_handle, std::string_view) {}); }));
    const ws_handle second = open_and_close();
    CHECK(log->waiter.wait([&] {
        for (const auto &line : log->lines)
            if (std::get<1>(line) == second)
                return true;
        return false;
    }));

    /* An empty function turns logging off and releases the handler now. */
    wsembed::set_log_handler(WS_LOG_DEBUG, nullptr);
    CHECK(Tracker::live() == live_before);
    const ws_handle third = open_and_close();
    CHECK(log->about(third) == 0);

    /* A handler that turns logging off from inside itself: no deadlock,
     * and it is released once that call returns. */
    auto once = std::make_shared<LogLines>();
    {
        Tracker tracker;
        wsembed::set_log_handler(WS_LOG_DEBUG, [once, tracker](int level, ws_handle socket, std::string_view line) {
            wsembed::set_log_handler(WS_LOG_ERROR, {});
            once->waiter.update([&] { once->lines.emplace_back(level, socket, std::string(line)); });
        });
    }
    open_and_close();
    CHECK(once->waiter.wait([&] { return !once->lines.empty(); }));
    const auto until = std::chrono::steady_clock::now() + test::deadline;
    while (Tracker::live() != live_before && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(1ms);
    CHECK(Tracker::live() == live_before);
    const std::size_t seen = once->waiter.read([&] { return once->lines.size(); });
    open_and_close();
    CHECK(once->waiter.read([&] { return once->lines.size(); }) == seen);

    /* Setters racing on several threads while lines flow: every handler
     * they made is released, and the last call decides what is set. */
    {
        std::atomic<int> calls{0};
        std::vector<std::thread> setters;
        for (int t = 0; t < 4; t++)
            setters.emplace_back([t, &calls] {
                for (int i = 0; i < 25; i++) {
                    Tracker tracker;
                    if ((i + t) % 3 == 0)
                        wsembed::set_log_handler(WS_LOG_DEBUG, nullptr);
                    else
                        wsembed::set_log_handler(WS_LOG_DEBUG, [tracker, &calls](int, ws_handle, std::string_view) {
                            calls++;
                        });
                }
            });
        open_and_close();
        for (auto &setter : setters)
            setter.join();
        wsembed::set_log_handler(WS_LOG_INFO, nullptr);
        CHECK(Tracker::live() == live_before);
    }
    auto last = std::make_shared<LogLines>();
    wsembed::set_log_handler(WS_LOG_INFO, [last](int level, ws_handle socket, std::string_view line) {
        last->waiter.update([&] { last->lines.emplace_back(level, socket, std::string(line)); });
    });
    const ws_handle fourth = open_and_close();
    CHECK(last->about(fourth) > 0);
    wsembed::set_log_handler(WS_LOG_INFO, nullptr);
}

void second_unit() { CHECK(second_unit_echo(g_url)); }

} // namespace

int main(int argc, char **argv) {
    if (argc != 2 && argc != 3) {
        std::fprintf(stderr, "usage: %s ws://127.0.0.1:PORT/ [ws://DEFLATE-ECHO/]\n", argv[0]);
        return 2;
    }
    g_url = argv[1];
    if (argc == 3)
        g_deflate_url = argv[2];
    CHECK(wsembed::version() == WSEMBED_VERSION);

    struct {
        const char *name;
        void (*run)();
    } tests[] = {
        {"echo cycle", echo_cycle},
        {"exceptions", exceptions},
        {"move semantics", move_semantics},
        {"handshake answer: refusal and 101", handshake_answer},
        {"reconnect, on_reconnecting and set_header", reconnect},
        {"destruction while messages flow", destruction_while_messages_flow},
        {"deflate options and extensions()", deflate},
        {"stats() after an exchange, ping() and its round trip", stats_and_ping},
        {"happy_eyeballs_delay option", happy_eyeballs},
        {"set_log_handler: lines, levels, off, from inside", log_handler},
        {"second translation unit", second_unit},
    };
    int passed = 0, failed = 0;
    for (const auto &t : tests) {
        const int before = test::failures();
        std::printf("- %s\n", t.name);
        std::fflush(stdout);
        t.run();
        if (test::failures() == before)
            passed++;
        else
            failed++;
    }

    /* Joining the IO thread lets every pending finalizer finish: then no
     * boxed callable may be left. */
    wsembed::shutdown();
    if (Tracker::live() != 0) {
        std::printf("  FAIL: %d callable(s) not released by the C finalizer\n", Tracker::live().load());
        failed++;
    }
    std::printf("cpp: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
