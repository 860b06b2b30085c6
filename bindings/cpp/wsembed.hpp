/*
 * wsembed.hpp: a header-only C++17 wrapper over the wsembed C API
 * (wsembed.h), in the manner of wasmtime's .hh wrappers: one move-only
 * owner class per handle, std::function callbacks boxed on the heap and
 * released by the C finalizer, errors as exceptions, capi() escape hatches.
 *
 *   #include "wsembed.hpp"
 *
 *   wsembed::WebSocket ws("ws://127.0.0.1:9001/");
 *   ws.on_open([](wsembed::SocketRef s) { s.send("hello"); });
 *   ws.on_message([](const wsembed::Message &m) { std::cout << m.text() << '\n'; });
 *   ws.on_close([](const wsembed::CloseEvent &e) { std::cout << e.code << '\n'; });
 *
 * Link with -lwsembed (pkg-config --cflags --libs wsembed). Everything
 * here is inline: include it in as many translation units as you like.
 *
 * Rules the wrapper adds to those of wsembed.h:
 * - Callbacks run on wsembed's IO thread, one at a time, and must return
 *   promptly. They receive a SocketRef (a non-owning handle), never the
 *   WebSocket object, so moving or destroying the WebSocket cannot leave a
 *   callback with a dangling pointer.
 * - A callback must not let an exception escape: it would have to unwind
 *   through the C library, so the wrapper calls std::terminate() instead
 *   (as std::thread does). Catch inside the callback.
 * - When a WebSocket is destroyed (or assigned over), no callback of it is
 *   running or will run once the destructor returns (ws_free's guarantee),
 *   and the callables, with what they captured, have been destroyed by the
 *   C finalizer, on this thread or on the IO thread. Destroyed from inside
 *   one of its own callbacks, the callables go right after that callback
 *   returns.
 */
#ifndef WSEMBED_HPP
#define WSEMBED_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "wsembed.h"

/* ThreadSanitizer cannot see the synchronization inside libwsembed (Rust,
 * not instrumented), so in a TSan build the hand-offs that the C API
 * guarantees are declared to it: ws_bind_ex before the callbacks it binds,
 * each callback before the next one and before its finalizer, and all of
 * them before ws_free returns. Nothing changes in other builds. */
#if defined(__SANITIZE_THREAD__)
#define WSEMBED_HPP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WSEMBED_HPP_TSAN 1
#endif
#endif
#ifdef WSEMBED_HPP_TSAN
extern "C" void __tsan_acquire(void *addr);
extern "C" void __tsan_release(void *addr);
#endif

namespace wsembed {

/**
 * A failed wsembed call. status() is the WS_ERR_* code; what() is the
 * library's message for it (ws_last_error(), copied at once since it is
 * only valid until the thread's next wsembed call).
 */
class Error : public std::runtime_error {
public:
    Error(int status, const std::string &message)
        : std::runtime_error(message), status_(status) {}

    /** The WS_ERR_* status code (negative). */
    int status() const noexcept { return status_; }

private:
    int status_;
};

namespace detail {

/* Reads ws_last_error() right after the failing call, before any other
 * wsembed call on this thread can replace it. */
[[noreturn]] inline void throw_last_error(int status) {
    const char *message = ws_last_error();
    throw Error(status, message[0] != '\0' ? std::string(message)
                                           : std::string(ws_strerror(status)));
}

inline void check(int status) {
    if (status != WS_OK)
        throw_last_error(status);
}

/* The C API takes NUL-terminated strings; a string_view may lack the NUL
 * and may hold an embedded one, which would silently cut the value. */
inline std::string c_string(std::string_view value, const char *what) {
    if (value.find('\0') != std::string_view::npos)
        throw Error(WS_ERR_INVALID_ARGUMENT, std::string(what) + " contains a NUL byte");
    return std::string(value);
}

inline std::uint32_t milliseconds(std::chrono::milliseconds ms, const char *what) {
    if (ms.count() < 0 || ms.count() > std::numeric_limits<std::uint32_t>::max())
        throw Error(WS_ERR_INVALID_ARGUMENT,
                    std::string(what) + " must be between 0 and 4294967295 ms");
    return static_cast<std::uint32_t>(ms.count());
}

/* The C parameter is a uint8_t, which would silently wrap 266 into a valid
 * 10; which values are valid is the library's to say. */
inline std::uint8_t window_bits(int bits, const char *what) {
    if (bits < 0 || bits > std::numeric_limits<std::uint8_t>::max())
        throw Error(WS_ERR_INVALID_ARGUMENT, std::string(what) + " must be between 0 and 255");
    return static_cast<std::uint8_t>(bits);
}

template <class T> struct is_std_function : std::false_type {};
template <class S> struct is_std_function<std::function<S>> : std::true_type {};

/* True for the callables that can be "empty": a null function pointer or
 * an empty std::function. Binding one is WS_ERR_INVALID_ARGUMENT, as a NULL
 * callback is in C. */
template <class F> bool is_null(const F &f) noexcept {
    if constexpr (std::is_pointer_v<F> || std::is_member_pointer_v<F>)
        return f == nullptr;
    else if constexpr (is_std_function<F>::value)
        return !f;
    else
        return false;
}

/* Bytes that a span-like argument can be sent as: contiguous, one byte per
 * element (char, unsigned char, std::byte, std::uint8_t...). */
/* One synchronization object stands for the library's internal locks: a
 * coarse model (every hand-off orders against every other), which can hide
 * a race but never invents one. */
#ifdef WSEMBED_HPP_TSAN
inline char tsan_sync;
inline void handoff_release() noexcept { __tsan_release(&tsan_sync); }
inline void handoff_acquire() noexcept { __tsan_acquire(&tsan_sync); }
#else
inline void handoff_release() noexcept {}
inline void handoff_acquire() noexcept {}
#endif

template <class C, class = void> struct is_byte_range : std::false_type {};
template <class C>
struct is_byte_range<C, std::void_t<decltype(std::data(std::declval<const C &>())),
                                    decltype(std::size(std::declval<const C &>()))>>
    : std::bool_constant<
          sizeof(*std::data(std::declval<const C &>())) == 1 &&
          std::is_trivially_copyable_v<
              std::remove_pointer_t<decltype(std::data(std::declval<const C &>()))>>> {};

} // namespace detail

/** WebSocket ready states, as the browser's readyState. */
enum class ReadyState : int {
    Connecting = WS_CONNECTING,
    Open = WS_OPEN,
    Closing = WS_CLOSING,
    Closed = WS_CLOSED,
};

/**
 * A received message. A view of wsembed's buffer, valid only during the
 * callback: copy (str(), bytes()) what you keep. Not copyable, so it cannot
 * be stored by mistake.
 */
class Message {
public:
    explicit Message(const ws_event &event) noexcept : event_(event) {}
    Message(const Message &) = delete;
    Message &operator=(const Message &) = delete;

    bool is_binary() const noexcept { return event_.is_binary; }
    bool is_text() const noexcept { return !event_.is_binary; }
    /** The payload as characters (UTF-8 for a text message). */
    std::string_view text() const noexcept {
        return {reinterpret_cast<const char *>(event_.data), event_.len};
    }
    const std::uint8_t *data() const noexcept { return event_.data; }
    std::size_t size() const noexcept { return event_.len; }
    /** Copies of the payload, to keep after the callback. */
    std::string str() const { return std::string(text()); }
    std::vector<std::uint8_t> bytes() const {
        return std::vector<std::uint8_t>(event_.data, event_.data + event_.len);
    }
    /** The C event, for what the wrapper does not cover. */
    const ws_event &capi() const noexcept { return event_; }

private:
    const ws_event &event_;
};

/** An `error` event: what failed (copied, safe to keep). */
struct ErrorEvent {
    /** WS_ERR_DNS .. WS_ERR_PROXY. */
    int code;
    std::string message;
    /** The HTTP status the server answered instead of 101 when it refused
     * the handshake (401, 503...; `code` is then WS_ERR_HANDSHAKE, or
     * WS_ERR_TIMEOUT if the answer's body did not come in time), else 0.
     * SocketRef::response_header() and response_body() give the rest. */
    int http_status = 0;
};

/** The `close` event, always a socket's last (copied, safe to keep). */
struct CloseEvent {
    /** The close code: 1005 when the peer sent none, 1006 for an abnormal closure. */
    std::uint16_t code;
    std::string reason;
    /** True when the closing handshake completed. */
    bool was_clean;
};

/** A `reconnecting` event (automatic reconnection): how the lost
 * connection ended and when the next attempt comes (copied, safe to keep). */
struct ReconnectingEvent {
    /** The lost connection's close code (1006: no close frame came). */
    std::uint16_t code;
    /** The peer's close reason, or what failed. */
    std::string reason;
    bool was_clean;
    /** The failure that ended it (WS_ERR_CONNECT, WS_ERR_TIMEOUT...), or 0
     * for a close by the server. */
    int error_code;
    /** The HTTP status of a refused handshake, else 0. */
    int http_status;
    /** The coming attempt, from 1 since the last stable connection. */
    std::uint32_t attempt;
    /** Milliseconds before it. */
    std::uint32_t delay_ms;
    /** Bytes queued and never written, dropped with the connection. */
    std::size_t dropped;
};

/** A socket's counters (ws_get_stats): the C struct itself, so every field
 * a newer header appends is there without a wrapper change. */
using Stats = ws_stats;

/**
 * A non-owning reference to a socket: what callbacks receive, and what
 * WebSocket::ref() gives. Copying it copies the handle number; using it
 * after the socket was freed throws Error(WS_ERR_INVALID_HANDLE), never
 * anything worse. Every method may be called from any thread, including
 * from a callback.
 */
class SocketRef {
public:
    explicit SocketRef(ws_handle handle) noexcept : handle_(handle) {}

    /** Sends a text message (UTF-8; may hold NUL bytes). Throws Error:
     * WS_ERR_INVALID_STATE unless open, WS_ERR_INVALID_UTF8,
     * WS_ERR_TOO_LARGE, WS_ERR_QUEUE_FULL (nothing queued; retry). */
    void send(std::string_view text) const {
        detail::check(ws_send_text(handle_, text.data(), text.size()));
    }

    /** Sends `size` bytes at `data` as a binary message (copied). */
    void send_binary(const void *data, std::size_t size) const {
        detail::check(ws_send_binary(handle_, data, size));
    }

    /** Sends any contiguous range of bytes as a binary message:
     * std::vector<std::uint8_t>, std::array<std::byte, N>, std::string,
     * and C++20's std::span<const std::byte> alike. */
    template <class Bytes, std::enable_if_t<detail::is_byte_range<Bytes>::value, int> = 0>
    void send_binary(const Bytes &bytes) const {
        send_binary(std::data(bytes), std::size(bytes));
    }

    /** Closes without a status code, as the browser's close(). From
     * CONNECTING it aborts the attempt. Closing twice is not an error. */
    void close() const { detail::check(ws_close(handle_)); }

    /** Closes with a code (1000 or 3000-4999) and a reason of at most 123
     * UTF-8 bytes; anything else throws Error(WS_ERR_INVALID_ARGUMENT). */
    void close(std::uint16_t code, std::string_view reason = {}) const {
        const std::string r = detail::c_string(reason, "close reason");
        detail::check(ws_close_ex(handle_, code, r.c_str()));
    }

    /** Drops the connection and connects again at once (automatic
     * reconnection only; Error(WS_ERR_INVALID_STATE) otherwise, or once
     * closed by request). See ws_reconnect. */
    void reconnect() const { detail::check(ws_reconnect(handle_)); }

    /** Sets a header of the next opening handshakes, replacing the values
     * of that name; see ws_set_header. */
    void set_header(std::string_view name, std::string_view value) const {
        detail::check(ws_set_header(handle_, detail::c_string(name, "header name").c_str(),
                                    detail::c_string(value, "header value").c_str()));
    }
    /** Removes a header from the next opening handshakes. */
    void remove_header(std::string_view name) const {
        detail::check(ws_set_header(handle_, detail::c_string(name, "header name").c_str(), nullptr));
    }

    /** Sends a ping now, ahead of queued messages, with at most 125 bytes
     * of payload; its pong sets Stats::last_rtt_us (wait for
     * Stats::pings_answered to grow to know it is in). Throws Error:
     * WS_ERR_INVALID_STATE unless open, WS_ERR_INVALID_ARGUMENT over 125
     * bytes. See ws_ping. */
    void ping(std::string_view payload = {}) const {
        detail::check(ws_ping(handle_, payload.data(), payload.size()));
    }

    /** What the socket has moved, over all its connections (see ws_stats
     * for each field); readable after the close too, until the socket is
     * freed. Counters are published by the IO thread after each step, so
     * they may trail the wire by one step. */
    Stats stats() const {
        /* Zeroed first: a library older than this header fills only the
         * fields it knows, and says how many bytes in `size`. */
        Stats out{};
        out.size = sizeof out;
        detail::check(ws_get_stats(handle_, &out));
        return out;
    }

    ReadyState ready_state() const {
        const int state = ws_ready_state(handle_);
        if (state < 0)
            detail::throw_last_error(state);
        return static_cast<ReadyState>(state);
    }

    /** Bytes queued by send and not yet written to the OS socket (0 for
     * a freed socket, as in C). */
    std::size_t buffered_amount() const noexcept { return ws_buffered_amount(handle_); }

    /** The subprotocol the server selected ("" before open or if none). */
    std::string protocol() const {
        return copy_string(ws_protocol);
    }

    /** The extensions the server agreed to, as its Sec-WebSocket-Extensions
     * answer, e.g. "permessage-deflate; client_max_window_bits=15" ("" before
     * open or if none). */
    std::string extensions() const { return copy_string(ws_extensions); }

    /** The URL as parsed. */
    std::string url() const { return copy_string(ws_url); }

    /** The HTTP status of the server's answer to the opening handshake:
     * 101 once open, a refusal's status (401, 403, 429, 503...), 0 while
     * no answer has come (or none did: DNS, connect or TLS failures). The
     * answer is there from the `open` or `error` callback on, until the
     * socket is freed. */
    int response_status() const {
        const int status = ws_response_status(handle_);
        if (status == 0)
            ready_state(); /* 0 also means a bad handle: throw for it */
        return status;
    }

    /** A header of that answer, in any letter case (a header sent several
     * times gives its values joined with ", "), or std::nullopt when the
     * answer has none or has not come. */
    std::optional<std::string> response_header(std::string_view name) const {
        const std::string n = detail::c_string(name, "header name");
        for (;;) {
            const std::size_t len = ws_response_header(handle_, n.c_str(), nullptr, 0);
            if (!header_found())
                return std::nullopt;
            std::string out(len + 1, '\0');
            const std::size_t now = ws_response_header(handle_, n.c_str(), &out[0], out.size());
            if (!header_found())
                return std::nullopt;
            if (now <= len) {
                out.resize(now);
                return out;
            }
        }
    }

    /** The body of a refusal, as it came (binary-safe; at most its first
     * 64 KiB); "" for a 101 or before an answer. */
    std::string response_body() const {
        for (;;) {
            const std::size_t len = ws_response_body(handle_, nullptr, 0);
            if (len == 0) {
                ready_state();
                return std::string();
            }
            std::string out(len, '\0');
            const std::size_t now = ws_response_body(handle_, &out[0], out.size());
            if (now <= len) {
                out.resize(now);
                return out;
            }
        }
    }

    /** The C handle: for calls the wrapper does not cover. Not owned. */
    ws_handle capi() const noexcept { return handle_; }

protected:
    ws_handle handle_;

private:
    /* ws_response_header returns "" both for an empty header and for an
     * absent one; its status, always set, tells them apart. */
    static bool header_found() {
        const int status = ws_last_status();
        if (status == WS_ERR_INVALID_ARGUMENT)
            return false;
        detail::check(status);
        return true;
    }

    /* The getters return the full length, as snprintf: size, then copy,
     * and size again if the value grew in between (the subprotocol is set
     * when the socket opens). 0 also means a bad handle: tell them apart. */
    std::string copy_string(std::size_t (*get)(ws_handle, char *, std::size_t)) const {
        for (;;) {
            const std::size_t len = get(handle_, nullptr, 0);
            if (len == 0) {
                ready_state();
                return std::string();
            }
            std::string out(len + 1, '\0');
            const std::size_t now = get(handle_, &out[0], out.size());
            if (now <= len) {
                out.resize(now);
                return out;
            }
        }
    }
};

/**
 * Options for opening a socket: a builder over ws_options (copied by the
 * WebSocket constructor, so one Options can open many sockets). Each
 * setter throws Error on a bad value (WS_ERR_INVALID_ARGUMENT) or a feature
 * this build lacks (WS_ERR_UNSUPPORTED, e.g. the TLS settings without TLS,
 * the deflate settings without deflate).
 * Move-only. Not thread-safe: use one Options from one thread at a time.
 *
 *   auto opts = wsembed::Options().protocol("chat").header("Authorization", "Bearer x");
 */
class Options {
public:
    Options() : options_(ws_options_new()) {
        if (options_ == nullptr)
            throw std::bad_alloc();
    }
    ~Options() { ws_options_free(options_); }
    Options(Options &&other) noexcept : options_(std::exchange(other.options_, nullptr)) {}
    Options &operator=(Options &&other) noexcept {
        if (this != &other) {
            ws_options_free(options_);
            options_ = std::exchange(other.options_, nullptr);
        }
        return *this;
    }
    Options(const Options &) = delete;
    Options &operator=(const Options &) = delete;

    /** Offers a subprotocol (Sec-WebSocket-Protocol), in order. */
    Options &protocol(std::string_view name) {
        detail::check(ws_options_add_protocol(options_, detail::c_string(name, "subprotocol").c_str()));
        return *this;
    }
    /** Adds a header to the opening handshake. */
    Options &header(std::string_view name, std::string_view value) {
        detail::check(ws_options_add_header(options_, detail::c_string(name, "header name").c_str(),
                                           detail::c_string(value, "header value").c_str()));
        return *this;
    }
    Options &connect_timeout(std::chrono::milliseconds ms) {
        detail::check(ws_options_set_connect_timeout_ms(options_, detail::milliseconds(ms, "connect timeout")));
        return *this;
    }
    /** How long one address gets before the next is tried beside it
     * (default 250 ms, RFC 8305); 0 tries one address at a time. */
    Options &happy_eyeballs_delay(std::chrono::milliseconds ms) {
        detail::check(ws_options_set_happy_eyeballs_delay_ms(options_,
                                                             detail::milliseconds(ms, "happy eyeballs delay")));
        return *this;
    }
    Options &close_timeout(std::chrono::milliseconds ms) {
        detail::check(ws_options_set_close_timeout_ms(options_, detail::milliseconds(ms, "close timeout")));
        return *this;
    }
    /** 0 turns pings off (the default). */
    Options &ping_interval(std::chrono::milliseconds ms) {
        detail::check(ws_options_set_ping_interval_ms(options_, detail::milliseconds(ms, "ping interval")));
        return *this;
    }
    Options &pong_timeout(std::chrono::milliseconds ms) {
        detail::check(ws_options_set_pong_timeout_ms(options_, detail::milliseconds(ms, "pong timeout")));
        return *this;
    }
    Options &max_message_size(std::size_t bytes) {
        detail::check(ws_options_set_max_message_size(options_, bytes));
        return *this;
    }
    Options &max_send_queue(std::size_t bytes) {
        detail::check(ws_options_set_max_send_queue(options_, bytes));
        return *this;
    }
    /** Extra trust roots for wss:// from a PEM file. */
    Options &ca_file(std::string_view pem_path) {
        detail::check(ws_options_set_ca_file(options_, detail::c_string(pem_path, "CA file").c_str()));
        return *this;
    }
    /** Extra trust roots for wss:// as PEM text. */
    Options &ca_pem(std::string_view pem) {
        detail::check(ws_options_set_ca_pem(options_, detail::c_string(pem, "CA PEM").c_str()));
        return *this;
    }
    /** A client certificate chain and key (PEM files) for mutual TLS. */
    Options &client_cert(std::string_view cert_pem_path, std::string_view key_pem_path) {
        detail::check(ws_options_set_client_cert(options_,
                                                 detail::c_string(cert_pem_path, "certificate file").c_str(),
                                                 detail::c_string(key_pem_path, "key file").c_str()));
        return *this;
    }
    /** DANGEROUS, for tests only: accept any certificate for any name. */
    Options &insecure_skip_verify(bool skip) {
        detail::check(ws_options_set_insecure_skip_verify(options_, skip));
        return *this;
    }
    /** Tunnels through a proxy: http:// or https:// (CONNECT; https:// is
     * TLS to the proxy, checked with ca_file/insecure_skip_verify as for the
     * server), socks5:// or socks5h://;
     * "" for none, whatever the environment says. See ws_options_set_proxy. */
    Options &proxy(std::string_view proxy_url) {
        detail::check(ws_options_set_proxy(options_, detail::c_string(proxy_url, "proxy URL").c_str()));
        return *this;
    }
    /** Whether the environment's ws_proxy, http_proxy... apply (default true). */
    Options &proxy_env(bool use_env) {
        detail::check(ws_options_set_proxy_env(options_, use_env));
        return *this;
    }
    /** Hosts to reach directly, replacing no_proxy and the loopback exemption. */
    Options &no_proxy(std::string_view list) {
        detail::check(ws_options_set_no_proxy(options_, detail::c_string(list, "no_proxy list").c_str()));
        return *this;
    }

    /// Follows up to `n` HTTP redirects of the opening handshake (default 0:
    /// a 3xx is refused). Never from wss:// to ws://; credentials stay
    /// behind when the host changes. See ws_options_set_max_redirects.
    Options &max_redirects(std::uint32_t n) {
        detail::check(ws_options_set_max_redirects(options_, n));
        return *this;
    }
    /// Reconnects automatically after a lost connection (default off): each
    /// loss is an on_reconnecting event, and on_open runs again after each
    /// reconnection. See ws_options_set_reconnect for what is retried.
    Options &reconnect(bool on) {
        detail::check(ws_options_set_reconnect(options_, on));
        return *this;
    }
    /// Delays before reconnecting: the first, and the cap they grow to.
    Options &reconnect_delay(std::chrono::milliseconds initial, std::chrono::milliseconds max) {
        detail::check(ws_options_set_reconnect_delay(options_, detail::milliseconds(initial, "initial delay"),
                                                     detail::milliseconds(max, "maximum delay")));
        return *this;
    }
    /// Growth per failed attempt (default 2.0) and spread (default 0.2: ±20 %).
    Options &reconnect_backoff(double multiplier, double jitter) {
        detail::check(ws_options_set_reconnect_backoff(options_, multiplier, jitter));
        return *this;
    }
    /// Consecutive failed attempts before giving up (default 0: never).
    Options &reconnect_max_attempts(std::uint32_t n) {
        detail::check(ws_options_set_reconnect_max_attempts(options_, n));
        return *this;
    }
    /// How long a connection must stay open to reset the count (default 5 s).
    Options &reconnect_stable(std::chrono::milliseconds open_for) {
        detail::check(ws_options_set_reconnect_stable_ms(options_, detail::milliseconds(open_for, "stable time")));
        return *this;
    }
    /** Offers permessage-deflate compression (RFC 7692). The server may
     * decline: extensions() says what was agreed. */
    Options &deflate(bool offer) {
        detail::check(ws_options_set_deflate(options_, offer));
        return *this;
    }
    /** The deflate offer's parameters: our window 0 (the server picks) or
     * 9..15, the server's 0 (ask nothing) or 8..15, and whether each side
     * starts every message with an empty window. */
    Options &deflate_params(int client_max_window_bits, int server_max_window_bits,
                            bool client_no_context_takeover, bool server_no_context_takeover) {
        detail::check(ws_options_set_deflate_params(
            options_, detail::window_bits(client_max_window_bits, "client_max_window_bits"),
            detail::window_bits(server_max_window_bits, "server_max_window_bits"),
            client_no_context_takeover, server_no_context_takeover));
        return *this;
    }
    /** Without context takeover, messages shorter than this go uncompressed
     * (default 1024). */
    Options &deflate_threshold(std::size_t bytes) {
        detail::check(ws_options_set_deflate_threshold(options_, bytes));
        return *this;
    }
    /** zlib level, 0 (store) to 9 (smallest); default 6. */
    Options &deflate_level(int level) {
        detail::check(ws_options_set_deflate_level(options_, level));
        return *this;
    }

    ws_options *capi() noexcept { return options_; }
    const ws_options *capi() const noexcept { return options_; }

private:
    ws_options *options_;
};

namespace detail {

using OpenFn = std::function<void(SocketRef)>;
using MessageFn = std::function<void(SocketRef, const Message &)>;
using ErrorFn = std::function<void(SocketRef, const ErrorEvent &)>;
using CloseFn = std::function<void(SocketRef, const CloseEvent &)>;
using ReconnectingFn = std::function<void(SocketRef, const ReconnectingEvent &)>;

/* The C trampolines: one per event kind, with the boxed std::function as
 * userdata. noexcept, because an exception must not unwind into the C
 * library: escaping one calls std::terminate(). */
inline void call_open(ws_handle socket, const ws_event *, void *userdata) noexcept {
    handoff_acquire();
    (*static_cast<OpenFn *>(userdata))(SocketRef(socket));
    handoff_release();
}
inline void call_message(ws_handle socket, const ws_event *event, void *userdata) noexcept {
    handoff_acquire();
    const Message message(*event);
    (*static_cast<MessageFn *>(userdata))(SocketRef(socket), message);
    handoff_release();
}
inline void call_error(ws_handle socket, const ws_event *event, void *userdata) noexcept {
    handoff_acquire();
    const ErrorEvent error{event->error_code, std::string(event->reason), event->http_status};
    (*static_cast<ErrorFn *>(userdata))(SocketRef(socket), error);
    handoff_release();
}
inline void call_close(ws_handle socket, const ws_event *event, void *userdata) noexcept {
    handoff_acquire();
    const CloseEvent close{event->code, std::string(event->reason), event->was_clean};
    (*static_cast<CloseFn *>(userdata))(SocketRef(socket), close);
    handoff_release();
}

inline void call_reconnecting(ws_handle socket, const ws_event *event, void *userdata) noexcept {
    handoff_acquire();
    const ReconnectingEvent lost{event->code,        std::string(event->reason), event->was_clean,
                                 event->error_code,  event->http_status,         event->attempt,
                                 event->delay_ms,    event->len};
    (*static_cast<ReconnectingFn *>(userdata))(SocketRef(socket), lost);
    handoff_release();
}

/* The finalizer: ws_bind_ex runs it exactly once, after the binding's last
 * call (unbind, ws_free, or a failed bind). */
template <class Fn> void delete_box(void *userdata) noexcept {
    handoff_acquire();
    delete static_cast<Fn *>(userdata);
}

/* Accepts f(SocketRef, const Event &...) as is, and f(const Event &...)
 * by ignoring the SocketRef; the result is one std::function type per kind. */
template <class Fn, class F, class... Event> Fn adapt(F &&f) {
    if (is_null(f))
        throw Error(WS_ERR_INVALID_ARGUMENT, "the callback is empty");
    if constexpr (std::is_invocable_v<std::decay_t<F> &, SocketRef, const Event &...>) {
        return Fn(std::forward<F>(f));
    } else {
        static_assert(std::is_invocable_v<std::decay_t<F> &, const Event &...>,
                      "a wsembed callback takes (SocketRef, const Event&) or (const Event&)");
        return Fn([g = std::forward<F>(f)](SocketRef, const Event &...event) mutable { g(event...); });
    }
}

} // namespace detail

/**
 * An owned WebSocket: opening it starts the connection (ws_open), the
 * destructor frees it (ws_free, which closes an open socket with 1001).
 * Movable, not copyable. A moved-from WebSocket holds no socket: its
 * methods throw Error(WS_ERR_INVALID_HANDLE) and its destructor does
 * nothing. Every method may be called from any thread.
 */
class WebSocket : private SocketRef {
public:
    /** Opens a socket (state Connecting) with default options. Throws
     * Error when the URL is refused at once (WS_ERR_INVALID_URL, or
     * WS_ERR_UNSUPPORTED for wss:// in a build without TLS); connection
     * failures come later, as an `error` event then a `close` event. */
    explicit WebSocket(std::string_view url) : SocketRef(0) {
        const std::string u = detail::c_string(url, "URL");
        handle_ = ws_open(u.c_str());
        if (handle_ == 0)
            throw_open_error(u);
    }

    /** As above, with options (copied: they may be reused or destroyed). */
    WebSocket(std::string_view url, const Options &options) : SocketRef(0) {
        const std::string u = detail::c_string(url, "URL");
        handle_ = ws_open_ex(u.c_str(), options.capi());
        if (handle_ == 0)
            throw_open_error(u);
    }

    /** Frees the socket: once this returns no callback of it runs. */
    ~WebSocket() { reset(); }

    WebSocket(WebSocket &&other) noexcept : SocketRef(std::exchange(other.handle_, 0)) {}
    WebSocket &operator=(WebSocket &&other) noexcept {
        if (this != &other) {
            reset();
            handle_ = std::exchange(other.handle_, 0);
        }
        return *this;
    }
    WebSocket(const WebSocket &) = delete;
    WebSocket &operator=(const WebSocket &) = delete;

    /** Binds a callback to the `open` event: void(SocketRef) or void().
     * Several callbacks per event run in the order bound; one bound after
     * its event happened is called once with it (no event is lost). */
    template <class F> WebSocket &on_open(F &&f) {
        return bind<detail::OpenFn>(WS_EVENT_OPEN, detail::call_open,
                                    detail::adapt<detail::OpenFn, F>(std::forward<F>(f)));
    }
    /** void(SocketRef, const Message &) or void(const Message &). Messages
     * that arrive before the first one is bound are held for it. */
    template <class F> WebSocket &on_message(F &&f) {
        return bind<detail::MessageFn>(WS_EVENT_MESSAGE, detail::call_message,
                                       detail::adapt<detail::MessageFn, F, Message>(std::forward<F>(f)));
    }
    /** void(SocketRef, const ErrorEvent &) or void(const ErrorEvent &). */
    template <class F> WebSocket &on_error(F &&f) {
        return bind<detail::ErrorFn>(WS_EVENT_ERROR, detail::call_error,
                                     detail::adapt<detail::ErrorFn, F, ErrorEvent>(std::forward<F>(f)));
    }
    /** void(SocketRef, const CloseEvent &) or void(const CloseEvent &). */
    template <class F> WebSocket &on_close(F &&f) {
        return bind<detail::CloseFn>(WS_EVENT_CLOSE, detail::call_close,
                                     detail::adapt<detail::CloseFn, F, CloseEvent>(std::forward<F>(f)));
    }

    /** void(SocketRef, const ReconnectingEvent &) or void(const
     * ReconnectingEvent &): a connection was lost and another attempt
     * comes (Options::reconnect). Closing from it stops reconnecting. */
    template <class F> WebSocket &on_reconnecting(F &&f) {
        return bind<detail::ReconnectingFn>(
            WS_EVENT_RECONNECTING, detail::call_reconnecting,
            detail::adapt<detail::ReconnectingFn, F, ReconnectingEvent>(std::forward<F>(f)));
    }

    using SocketRef::buffered_amount;
    using SocketRef::reconnect;
    using SocketRef::remove_header;
    using SocketRef::set_header;
    using SocketRef::capi;
    using SocketRef::close;
    using SocketRef::extensions;
    using SocketRef::protocol;
    using SocketRef::ready_state;
    using SocketRef::response_body;
    using SocketRef::response_header;
    using SocketRef::response_status;
    using SocketRef::ping;
    using SocketRef::stats;
    using SocketRef::send;
    using SocketRef::send_binary;
    using SocketRef::url;

    /** A non-owning reference, e.g. for another thread. */
    SocketRef ref() const noexcept { return SocketRef(handle_); }

    /** True unless moved from. */
    explicit operator bool() const noexcept { return handle_ != 0; }

    /** Gives up ownership: the caller must ws_free the returned handle. */
    ws_handle release() noexcept { return std::exchange(handle_, 0); }

private:
    void reset() noexcept {
        if (handle_ != 0) {
            ws_free(std::exchange(handle_, 0));
            detail::handoff_acquire();
        }
    }

    template <class Fn> WebSocket &bind(ws_event_kind kind, ws_callback trampoline, Fn fn) {
        const ws_handle handle = handle_;
        Fn *box = new Fn(std::move(fn));
        /* Everything this thread did so far happens before the callbacks:
         * read handle_ first, as a callback may destroy this object. */
        detail::handoff_release();
        /* ws_bind_ex takes the box on every path: on failure its finalizer
         * has already deleted it. */
        detail::check(ws_bind_ex(handle, kind, trampoline, box, detail::delete_box<Fn>));
        return *this;
    }

    /* ws_open answers 0 and a message but not the status code, so the
     * wrapper names the likely one: WS_ERR_UNSUPPORTED for wss:// in a build
     * without TLS, else WS_ERR_INVALID_URL. The message is read first: it
     * is only valid until this thread's next wsembed call. */
    [[noreturn]] static void throw_open_error(const std::string &url) {
        const std::string message = ws_last_error();
        std::string scheme = url.substr(0, 6);
        for (char &c : scheme)
            c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        const int status = scheme == "wss://" && !ws_has_tls() ? WS_ERR_UNSUPPORTED : WS_ERR_INVALID_URL;
        throw Error(status, message);
    }
};

/** A log handler: the level (WS_LOG_ERROR .. WS_LOG_DEBUG), the socket the
 * line is about (0 for none) and the line, valid only during the call. */
using LogHandler = std::function<void(int level, ws_handle socket, std::string_view message)>;

namespace detail {

/* What set_log_handler was last asked for. The library is given one
 * trampoline with no userdata, and the trampoline reads the handler from
 * here, so the std::function's lifetime rests on the shared_ptr, not on
 * the order in which concurrent setters reach the library. */
struct LogState {
    std::mutex mutex; /* never held while calling the handler or wsembed */
    std::shared_ptr<const LogHandler> handler; /* empty: off */
    int max_level = 0;
    std::uint64_t version = 0; /* bumped by every set_log_handler */
};

/* Never destroyed: the IO thread may log during static destruction. */
inline LogState &log_state() {
    static LogState *const state = new LogState();
    return *state;
}

inline void call_log(int level, ws_handle socket, const char *message, void *) noexcept {
    std::shared_ptr<const LogHandler> handler;
    {
        std::lock_guard<std::mutex> lock(log_state().mutex);
        handler = log_state().handler;
    }
    if (handler)
        (*handler)(level, socket, std::string_view(message));
}

} // namespace detail

/**
 * Sets the process-wide log handler: `handler` gets every line of
 * wsembed's log up to `max_level` (WS_LOG_ERROR, WS_LOG_WARN, WS_LOG_INFO
 * or WS_LOG_DEBUG; any other level throws Error(WS_ERR_INVALID_ARGUMENT)
 * and keeps the handler in place). An empty function turns logging off
 * (the default; `max_level` is then ignored). A new call replaces the
 * handler for every socket. The text is for people: do not parse it.
 *
 * The handler is called on wsembed's IO thread, or on the thread of the
 * wsembed call a line is about, concurrently with event callbacks and
 * with itself: it must be thread-safe, quick (every socket waits while it
 * runs on the IO thread) and must not throw (std::terminate). It may call
 * any wsembed function, this one included.
 *
 * The wrapper keeps the std::function alive until it is replaced. When
 * this returns, the handler it replaced is in no call on another thread
 * and has been destroyed, here or on the thread of the call that was
 * still running it; called from inside that handler, it goes once that
 * call returns. (While another thread sets a handler at the same time, a
 * call that began before that thread's setter may still be running.) Any
 * thread; concurrent calls end with the last one's handler and level.
 */
inline void set_log_handler(int max_level, LogHandler handler) {
    detail::LogState &state = detail::log_state();
    std::shared_ptr<const LogHandler> box;
    if (handler) {
        box = std::make_shared<const LogHandler>(std::move(handler));
        /* The library judges the level; refused, nothing has changed. */
        const int status = ws_set_log_callback(max_level, detail::call_log, nullptr);
        if (status != WS_OK)
            detail::throw_last_error(status);
    }
    {
        std::lock_guard<std::mutex> lock(state.mutex);
        box.swap(state.handler);
        state.max_level = max_level;
        state.version++;
    }
    /* The replaced handler: destroyed outside the lock, since what it
     * captured may run anything. A call still running holds its own copy. */
    box.reset();
    /* Setters racing on other threads may reach the library in another
     * order than they updated `state`: whichever finds `state` changed
     * after its call applies the newest request again, so the last call
     * into the library always carries it. */
    for (;;) {
        bool on;
        int level;
        std::uint64_t seen;
        {
            std::lock_guard<std::mutex> lock(state.mutex);
            on = state.handler != nullptr;
            level = state.max_level;
            seen = state.version;
        }
        if (on)
            ws_set_log_callback(level, detail::call_log, nullptr);
        else
            ws_set_log_callback(0, nullptr, nullptr);
        std::lock_guard<std::mutex> lock(state.mutex);
        if (state.version == seen)
            return;
    }
}

/** "MAJOR.MINOR.PATCH" of the loaded library. */
inline std::string version() { return ws_version(); }
/** False when this build of the library cannot speak wss://. */
inline bool has_tls() noexcept { return ws_has_tls(); }
/** False when this build of the library cannot compress (the deflate
 * options then throw WS_ERR_UNSUPPORTED). */
inline bool has_deflate() noexcept { return ws_has_deflate(); }
/** Closes every socket, waits for their closing handshakes and joins the
 * IO thread (and so lets every pending finalizer finish): for a clean exit. */
inline void shutdown() noexcept { ws_shutdown(); }

} // namespace wsembed

#endif // WSEMBED_HPP
