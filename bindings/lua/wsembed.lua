--[[
wsembed for LuaJIT: the browser's WebSocket (Brython's browser.websocket)
over libwsembed's C ABI, through LuaJIT's FFI.

    local websocket = require("wsembed")
    local ws = websocket.WebSocket("ws://127.0.0.1:9001/")
    ws:bind("open", function(evt) ws:send("Hello") end)
    ws:bind("message", function(evt) print(evt.data); ws:close() end)
    ws:bind("close", function(evt) print("closed", evt.code) end)
    websocket.run()          -- dispatches until every socket is closed

Threads. wsembed does its networking on its own IO thread, and a LuaJIT
callback entered from a foreign thread crashes LuaJIT. So every socket of
this module is opened with one dispatcher (include/wsembed.h): its
callbacks run only inside websocket.dispatch() (or run()), on the thread
that calls it. Nothing ever calls into Lua behind your back.

Callbacks. LuaJIT has a small, fixed number of callback slots, so the
module makes ONE C callback (an ffi.cast of a Lua function), shared by
every binding of every socket; each binding's userdata is an integer key
into a Lua table. A callback gets an event table:
  evt.type      "open", "message", "error", "close" or "reconnecting"
  evt.target    the WebSocket
  evt.data      message: the payload as a Lua string (text or binary)
  evt.binary    message: true for a binary message, false for text
  evt.code, evt.reason, evt.wasClean   close (1005: no code; 1006: no
                close frame); reason is also the message of an error
  evt.error_code, evt.error_name       error (WS_ERR_DNS .. WS_ERR_PROXY)
  evt.status    error: the HTTP status of a refused handshake, else 0
  evt.attempt   open: opens before this one; reconnecting (with the
                reconnect option): the coming attempt, from 1, and
  evt.delay     the seconds before it; code, reason, wasClean and
                error_code say how the lost connection ended
An error raised by a callback does not unwind through the C library
(that would abort): it is caught, the other events go on, and dispatch()
raises it once ws_dispatch has returned. Callbacks must not yield.

Lifetime. As in a browser, a socket that is not closed yet is kept alive
by the module (its events still matter even if you dropped it). Once its
`close` event has run, it is freed when Lua collects it; ws:free() frees
it at once (an open socket is then closed with 1001, without events).

Errors from the C ABI are raised as error objects: e.status (WS_ERR_*),
e.name ("WS_ERR_INVALID_URL"), e.message (ws_last_error()); tostring(e)
gives "wsembed: <message> (<name>)".
]]

local ffi = require("ffi")

local M = {}

-- Copied by hand from include/wsembed.h (version 0.1). Only what this
-- module calls. tests/lua/run_tests.lua checks each declaration against
-- the header, so a change there fails the tests instead of memory.
local CDEF = [[
typedef struct ws_options ws_options;
typedef uint64_t ws_dispatcher;
typedef uint64_t ws_handle;
typedef uint32_t ws_event_kind;
typedef struct ws_event {
  ws_event_kind kind;
  const uint8_t *data;
  size_t len;
  bool is_binary;
  uint16_t code;
  const char *reason;
  bool was_clean;
  int error_code;
  uint32_t attempt;
  uint32_t delay_ms;
  int32_t http_status;
} ws_event;
typedef void (*ws_callback)(ws_handle socket, const struct ws_event *event, void *userdata);
typedef struct ws_stats {
  uint32_t size;
  uint32_t reserved;
  uint64_t bytes_sent;
  uint64_t bytes_received;
  uint64_t messages_sent;
  uint64_t messages_received;
  uint64_t frames_sent;
  uint64_t frames_received;
  uint32_t handshake_ms;
  uint32_t last_rtt_us;
  uint64_t payload_bytes_sent;
  uint64_t payload_bytes_received;
  uint32_t connections;
  uint32_t pongs_received;
  uint32_t pings_sent;
  uint32_t pings_answered;
} ws_stats;
ws_dispatcher ws_dispatcher_new(void);
int ws_dispatcher_fd(ws_dispatcher dispatcher);
int ws_dispatch(ws_dispatcher dispatcher, int timeout_ms, size_t max_events);
int ws_dispatcher_wakeup(ws_dispatcher dispatcher);
int ws_dispatcher_free(ws_dispatcher dispatcher);
const char *ws_strerror(int status);
int ws_last_status(void);
const char *ws_last_error(void);
const char *ws_version(void);
bool ws_has_tls(void);
struct ws_options *ws_options_new(void);
void ws_options_free(struct ws_options *options);
int ws_options_add_protocol(struct ws_options *options, const char *subprotocol);
int ws_options_add_header(struct ws_options *options, const char *name, const char *value);
int ws_options_set_connect_timeout_ms(struct ws_options *options, uint32_t ms);
int ws_options_set_happy_eyeballs_delay_ms(struct ws_options *options, uint32_t ms);
int ws_options_set_close_timeout_ms(struct ws_options *options, uint32_t ms);
int ws_options_set_ping_interval_ms(struct ws_options *options, uint32_t ms);
int ws_options_set_pong_timeout_ms(struct ws_options *options, uint32_t ms);
int ws_options_set_max_message_size(struct ws_options *options, size_t bytes);
int ws_options_set_max_send_queue(struct ws_options *options, size_t bytes);
int ws_options_set_ca_file(struct ws_options *options, const char *pem_path);
int ws_options_set_insecure_skip_verify(struct ws_options *options, bool skip);
int ws_options_set_proxy(struct ws_options *options, const char *proxy_url);
int ws_options_set_dispatcher(struct ws_options *options, ws_dispatcher dispatcher);
int ws_options_set_deflate(struct ws_options *options, bool offer);
int ws_options_set_max_redirects(struct ws_options *options, uint32_t n);
int ws_options_set_reconnect(struct ws_options *options, bool on);
int ws_options_set_reconnect_max_attempts(struct ws_options *options, uint32_t n);
int ws_options_set_reconnect_stable_ms(struct ws_options *options, uint32_t ms);
int ws_reconnect(ws_handle socket);
int ws_set_header(ws_handle socket, const char *name, const char *value);
bool ws_has_deflate(void);
ws_handle ws_open_ex(const char *url, const struct ws_options *options);
int ws_bind(ws_handle socket, ws_event_kind kind, ws_callback callback, void *userdata);
int ws_unbind(ws_handle socket, ws_event_kind kind, ws_callback callback, void *userdata);
int ws_send_text(ws_handle socket, const char *data, size_t len);
int ws_send_binary(ws_handle socket, const void *data, size_t len);
int ws_close(ws_handle socket);
int ws_close_ex(ws_handle socket, uint16_t code, const char *reason);
int ws_free(ws_handle socket);
int ws_ready_state(ws_handle socket);
size_t ws_buffered_amount(ws_handle socket);
size_t ws_protocol(ws_handle socket, char *buf, size_t cap);
size_t ws_url(ws_handle socket, char *buf, size_t cap);
size_t ws_extensions(ws_handle socket, char *buf, size_t cap);
int ws_response_status(ws_handle socket);
int ws_get_stats(ws_handle socket, struct ws_stats *out);
int ws_ping(ws_handle socket, const void *data, size_t len);
int ws_set_buffered_amount_low_threshold(ws_handle socket, size_t bytes);
]]
M._CDEF = CDEF

-- ffi.cdef is global to the Lua state and refuses to redefine a struct:
-- declare once, even if this file is loaded twice (dofile, a cleared
-- package.loaded).
if not pcall(ffi.typeof, "struct ws_event") then
    ffi.cdef(CDEF)
end

-- A monotonic clock for run()'s timeout. The struct may already be
-- declared by another module (then this fails harmlessly); redeclaring a
-- function is allowed.
pcall(ffi.cdef, "struct timespec { long tv_sec; long tv_nsec; };")
ffi.cdef("int clock_gettime(int clock_id, struct timespec *tp);")
local CLOCK_MONOTONIC = ({ Linux = 1, OSX = 6 })[ffi.os] or 0 -- else CLOCK_REALTIME
local timespec = ffi.new("struct timespec")
local function now()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
    return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

-- The constants of include/wsembed.h, by their C names. The WS_LOG_*
-- levels are here for completeness only: ws_set_log_callback calls its
-- callback on wsembed's IO thread, where a LuaJIT callback cannot run, so
-- this module does not offer it.
local C = {
    WS_OK = 0,
    WS_ERR_INVALID_HANDLE = -1,
    WS_ERR_INVALID_ARGUMENT = -2,
    WS_ERR_INVALID_URL = -3,
    WS_ERR_UNSUPPORTED = -4,
    WS_ERR_INVALID_STATE = -5,
    WS_ERR_INVALID_UTF8 = -6,
    WS_ERR_QUEUE_FULL = -7,
    WS_ERR_TOO_LARGE = -8,
    WS_ERR_INTERNAL = -9,
    WS_ERR_DNS = -20,
    WS_ERR_CONNECT = -21,
    WS_ERR_TIMEOUT = -22,
    WS_ERR_TLS = -23,
    WS_ERR_HANDSHAKE = -24,
    WS_ERR_PROTOCOL = -25,
    WS_ERR_IO = -26,
    WS_ERR_PROXY = -27,
    WS_LOG_ERROR = 1,
    WS_LOG_WARN = 2,
    WS_LOG_INFO = 3,
    WS_LOG_DEBUG = 4,
    WS_CONNECTING = 0,
    WS_OPEN = 1,
    WS_CLOSING = 2,
    WS_CLOSED = 3,
    WS_EVENT_OPEN = 1,
    WS_EVENT_MESSAGE = 2,
    WS_EVENT_ERROR = 3,
    WS_EVENT_CLOSE = 4,
    WS_EVENT_RECONNECTING = 5,
    WS_EVENT_BUFFERED_AMOUNT_LOW = 6,
}
M._C = C
local STATUS_NAMES = {}
for name, value in pairs(C) do
    if name == "WS_OK" or name:match("^WS_ERR_") then
        M[name] = value
        STATUS_NAMES[value] = name
    end
end
M.CONNECTING, M.OPEN, M.CLOSING, M.CLOSED = C.WS_CONNECTING, C.WS_OPEN, C.WS_CLOSING, C.WS_CLOSED

local KINDS = {
    open = C.WS_EVENT_OPEN,
    message = C.WS_EVENT_MESSAGE,
    error = C.WS_EVENT_ERROR,
    close = C.WS_EVENT_CLOSE,
    reconnecting = C.WS_EVENT_RECONNECTING,
    bufferedamountlow = C.WS_EVENT_BUFFERED_AMOUNT_LOW,
}

---------------------------------------------------------------------------
-- Loading the library: $WSEMBED_LIBRARY, else the repository's build
-- (target/release, found from this file's path), else the linker's path.

local function repo_library()
    local source = debug.getinfo(1, "S").source
    if source:sub(1, 1) ~= "@" then
        return nil
    end
    local dir = source:sub(2):match("^(.*)[/\\]") or "."
    local suffix = ffi.os == "OSX" and ".dylib" or ".so"
    return dir .. "/../../target/release/libwsembed" .. suffix
end

-- Keeps the library loaded for good. LuaJIT unloads an ffi.load'ed library
-- when the Lua state closes, before the collector's finalizers of sockets
-- call ws_free, and wsembed's IO thread may still be running its code.
-- One more dlopen reference, never released, rules that out.
local function pin(lib, name)
    if ffi.os ~= "Windows" then
        pcall(function()
            ffi.cdef("void *dlopen(const char *filename, int flags);")
            ffi.C.dlopen(name, 2) -- RTLD_NOW; already loaded: a reference
        end)
    end
    return lib
end

local function load_library()
    local fix = "Build it with `cargo build --release --lib` in the wsembed repository, "
        .. "or set WSEMBED_LIBRARY=/path/to/libwsembed.so, or install it where the "
        .. "dynamic linker looks (LD_LIBRARY_PATH, ldconfig)."
    local explicit = os.getenv("WSEMBED_LIBRARY")
    if explicit and explicit ~= "" then
        -- Asked for by name: no silent fallback to another copy.
        local ok, lib = pcall(ffi.load, explicit)
        if ok then
            return pin(lib, explicit)
        end
        error(("wsembed: cannot load WSEMBED_LIBRARY=%s: %s\n%s"):format(explicit, lib, fix), 0)
    end
    local tried = {}
    local path = repo_library()
    if path then
        local f = io.open(path, "rb")
        if f then
            f:close()
            local ok, lib = pcall(ffi.load, path)
            if ok then
                return pin(lib, path)
            end
            tried[#tried + 1] = path .. ": " .. tostring(lib)
        else
            tried[#tried + 1] = path .. ": no such file"
        end
    end
    local ok, lib = pcall(ffi.load, "wsembed")
    if ok then
        return pin(lib, ffi.os == "OSX" and "libwsembed.dylib" or "libwsembed.so")
    end
    tried[#tried + 1] = "wsembed (linker path): " .. tostring(lib)
    error("wsembed: cannot load the libwsembed shared library.\n  tried "
        .. table.concat(tried, "\n  tried ") .. "\n" .. fix, 0)
end

local lib = load_library()

-- The declarations above are those of version 0.1; a library of another
-- minor version (0.x) may differ in layout, which would corrupt memory
-- instead of failing.
local VERSION = ffi.string(lib.ws_version())
if not VERSION:match("^0%.1%.") then
    error(("wsembed: this Lua module was written for libwsembed 0.1.x, the loaded library is %s; "
        .. "update the declarations in bindings/lua/wsembed.lua from include/wsembed.h"):format(VERSION), 0)
end

---------------------------------------------------------------------------
-- Errors.

local Error = {}
Error.__index = Error
Error.__tostring = function(e)
    return ("wsembed: %s (%s)"):format(e.message, e.name)
end
M.Error = Error

-- Raises a status as an error object. Without a message it reads
-- ws_last_error(), which lasts only until this thread's next wsembed call:
-- call this right after the failed call.
local function raise(status, message)
    status = status or lib.ws_last_status()
    message = message or ffi.string(lib.ws_last_error())
    local name = STATUS_NAMES[status] or ("status " .. tostring(status))
    error(setmetatable({ status = status, name = name, message = message }, Error), 0)
end

local function check(status)
    if status < 0 then
        raise(status)
    end
    return status
end

local function bad_argument(message)
    raise(C.WS_ERR_INVALID_ARGUMENT, message)
end

-- An integer in [lo, hi], since the FFI would silently wrap a value that
-- does not fit (close code 70000 would become 4464, a valid code).
local function integer(value, lo, hi, what)
    if type(value) ~= "number" or value % 1 ~= 0 or value < lo or value > hi then
        bad_argument(("%s must be an integer in %d..%d, not %s"):format(what, lo, hi, tostring(value)))
    end
    return value
end

function M.strerror(status)
    return ffi.string(lib.ws_strerror(status))
end

function M.version()
    return VERSION
end

function M.has_deflate()
    return lib.ws_has_deflate()
end

function M.has_tls()
    return lib.ws_has_tls()
end

---------------------------------------------------------------------------
-- State of this module instance. Sockets and bindings are known by
-- integer keys; only plain data is kept here, never a WebSocket strongly
-- (except `live`), so that closed sockets can be collected.

local next_key = 0
local function new_key()
    next_key = next_key + 1
    return next_key
end

local dispatcher -- ws_dispatcher, created by the first need
local callback -- the one ws_callback shared by every binding
local handles = {} -- socket key -> ws_handle; present until freed
local objects = setmetatable({}, { __mode = "v" }) -- socket key -> WebSocket
local live = {} -- socket key -> WebSocket, until its close event ran
local socket_of = {} -- binding key -> socket key
local bindings_of = {} -- socket key -> set of binding keys
local closed_now = {} -- closed during this dispatch: alive until it ends
local dispatching = false -- inside ws_dispatch (so inside a callback)
local callback_error -- the first error a callback raised in this dispatch

local function get_dispatcher()
    if dispatcher == nil then
        local d = lib.ws_dispatcher_new()
        if d == 0 then
            raise()
        end
        dispatcher = d
    end
    return dispatcher
end

local function make_event(ev, ws)
    local kind = ev.kind
    if kind == C.WS_EVENT_MESSAGE then
        -- Copied: the C event lives only during the callback.
        return { type = "message", data = ffi.string(ev.data, ev.len), binary = ev.is_binary, target = ws }
    elseif kind == C.WS_EVENT_CLOSE then
        return { type = "close", code = ev.code, reason = ffi.string(ev.reason), wasClean = ev.was_clean, target = ws }
    elseif kind == C.WS_EVENT_ERROR then
        return {
            type = "error",
            reason = ffi.string(ev.reason),
            error_code = ev.error_code,
            error_name = STATUS_NAMES[ev.error_code],
            -- The HTTP status of a refused handshake, else 0.
            status = ev.http_status,
            target = ws,
        }
    elseif kind == C.WS_EVENT_BUFFERED_AMOUNT_LOW then
        -- bufferedAmount fell to the threshold: room to send more.
        return { type = "bufferedamountlow", bufferedAmount = tonumber(ev.len), target = ws }
    elseif kind == C.WS_EVENT_RECONNECTING then
        return {
            type = "reconnecting",
            code = ev.code,
            reason = ffi.string(ev.reason),
            wasClean = ev.was_clean,
            error_code = ev.error_code,
            status = ev.http_status,
            -- The coming attempt, from 1, and the seconds before it.
            attempt = ev.attempt,
            delay = ev.delay_ms / 1000,
            target = ws,
        }
    end
    -- How many times the socket opened before (0 the first time).
    return { type = "open", attempt = ev.attempt, target = ws }
end

local function deliver(ev, binding)
    local key = socket_of[binding]
    local ws = key and objects[key]
    local entry = ws and ws._fns[binding]
    if not entry then
        return -- unbound or freed since the event was queued
    end
    local evt = make_event(ev, ws)
    local ok, err = xpcall(entry.fn, debug.traceback, evt)
    if not ok and callback_error == nil then
        callback_error = ("wsembed: error in a %q callback: %s"):format(evt.type, tostring(err))
    end
end

-- The C callback. Only ever entered inside ws_dispatch on this thread.
-- It must not raise: a Lua error unwinding through ws_dispatch's Rust
-- frames would abort the process.
local function on_event(_, ev, userdata)
    local ok, err = pcall(deliver, ev, tonumber(ffi.cast("uintptr_t", userdata)))
    if not ok and callback_error == nil then
        callback_error = err
    end
end

local function get_callback()
    if callback == nil then
        callback = ffi.cast("ws_callback", on_event)
    end
    return callback
end

-- Frees a socket's handle, once; from ws:free() or the garbage collector
-- (so it must not refer to the WebSocket, which may already be gone).
local function release(key)
    local handle = handles[key]
    if handle == nil then
        return
    end
    handles[key], live[key] = nil, nil
    for binding in pairs(bindings_of[key]) do
        socket_of[binding] = nil
    end
    bindings_of[key] = nil
    -- From inside a callback this does not wait; from outside, no callback
    -- of the socket runs after it returns (include/wsembed.h).
    lib.ws_free(handle)
end

-- The fields of ws_stats that ws:stats() returns, with their sizes.
local STATS_FIELDS = {
    { "bytes_sent", 8 },
    { "bytes_received", 8 },
    { "messages_sent", 8 },
    { "messages_received", 8 },
    { "frames_sent", 8 },
    { "frames_received", 8 },
    { "handshake_ms", 4 },
    { "last_rtt_us", 4 },
    { "payload_bytes_sent", 8 },
    { "payload_bytes_received", 8 },
    { "connections", 4 },
    { "pongs_received", 4 },
    { "pings_sent", 4 },
    { "pings_answered", 4 },
}

local function read_stats(handle)
    local out = ffi.new("ws_stats")
    out.size = ffi.sizeof(out)
    check(lib.ws_get_stats(handle, out))
    local stats = {}
    for _, field in ipairs(STATS_FIELDS) do
        local name = field[1]
        -- A library older than these declarations fills fewer bytes (and
        -- says how many): a field it did not fill is left out, not 0.
        if ffi.offsetof("ws_stats", name) + field[2] <= out.size then
            -- Exact up to 2^53, which no counter reaches.
            stats[name] = tonumber(out[name])
        end
    end
    return stats
end

---------------------------------------------------------------------------
-- WebSocket objects.

local WebSocket = { CONNECTING = M.CONNECTING, OPEN = M.OPEN, CLOSING = M.CLOSING, CLOSED = M.CLOSED }

local function read_string(getter, handle)
    -- snprintf semantics: size, then copy.
    local size = tonumber(getter(handle, nil, 0))
    local buf = ffi.new("char[?]", size + 1)
    getter(handle, buf, size + 1)
    return ffi.string(buf, size)
end

local getters = {
    readyState = function(ws)
        local handle = handles[ws._key]
        local state = handle and lib.ws_ready_state(handle) or -1
        return state >= 0 and state or M.CLOSED
    end,
    bufferedAmount = function(ws)
        local handle = handles[ws._key]
        return handle and tonumber(lib.ws_buffered_amount(handle)) or 0
    end,
    protocol = function(ws)
        local handle = handles[ws._key]
        return handle and read_string(lib.ws_protocol, handle) or ws._protocol or ""
    end,
    -- The extensions the server agreed to ("permessage-deflate; ..."), "" if none.
    extensions = function(ws)
        local handle = handles[ws._key]
        return handle and read_string(lib.ws_extensions, handle) or ws._extensions or ""
    end,
    -- The HTTP status of the server's answer to the handshake: 101 once
    -- open, a refusal's status (401, 503...), 0 if none came.
    response_status = function(ws)
        local handle = handles[ws._key]
        return handle and tonumber(lib.ws_response_status(handle)) or ws._response_status or 0
    end,
}

local WebSocketMeta = {
    __index = function(ws, name)
        local getter = getters[name]
        if getter then
            return getter(ws)
        end
        return WebSocket[name]
    end,
    __tostring = function(ws)
        local states = { [0] = "CONNECTING", "OPEN", "CLOSING", "CLOSED" }
        return ("WebSocket(%s, %s)"):format(ws.url, states[ws.readyState])
    end,
}

local function handle_of(ws)
    local handle = handles[ws._key]
    if handle == nil then
        raise(C.WS_ERR_INVALID_HANDLE, "this WebSocket was freed")
    end
    return handle
end

local function add_binding(ws, kind, fn, internal)
    local binding = new_key()
    check(lib.ws_bind(handle_of(ws), kind, get_callback(), ffi.cast("void *", binding)))
    socket_of[binding] = ws._key
    bindings_of[ws._key][binding] = true
    ws._fns[binding] = { kind = kind, fn = fn, internal = internal }
end

local function remove_binding(ws, binding)
    local entry = ws._fns[binding]
    ws._fns[binding] = nil
    socket_of[binding] = nil
    local handle = handles[ws._key]
    if handle then
        bindings_of[ws._key][binding] = nil
        lib.ws_unbind(handle, entry.kind, callback, ffi.cast("void *", binding))
    end
end

local function kind_of(name)
    local kind = KINDS[name]
    if not kind then
        bad_argument(
            ("unknown WebSocket event %q: expected open, message, error, close or reconnecting"):format(tostring(name))
        )
    end
    return kind
end

--- ws:bind(event, fn): calls fn(evt) on each `event` ("open", "message",
-- "error", "close"), in the order bound. Binding the same fn twice to an
-- event binds it once. An open, error or close that already happened is
-- still given to a callback bound late, and messages that arrive while no
-- message callback is bound wait for the first one (in a later dispatch).
function WebSocket:bind(name, fn)
    local kind = kind_of(name)
    if type(fn) ~= "function" and not (getmetatable(fn) or {}).__call then
        bad_argument("bind() needs a function, not " .. type(fn))
    end
    for _, entry in pairs(self._fns) do
        if entry.kind == kind and entry.fn == fn and not entry.internal then
            return self
        end
    end
    add_binding(self, kind, fn, false)
    return self
end

--- ws:unbind(event [, fn]): removes fn, or every callback of `event`.
-- Removing one that is not bound does nothing.
function WebSocket:unbind(name, fn)
    local kind = kind_of(name)
    local doomed = {}
    for binding, entry in pairs(self._fns) do
        if entry.kind == kind and not entry.internal and (fn == nil or entry.fn == fn) then
            doomed[#doomed + 1] = binding
        end
    end
    for _, binding in ipairs(doomed) do
        remove_binding(self, binding)
    end
    return self
end

--- ws:send(data [, binary]): sends the Lua string `data` as a text message
-- (it must be UTF-8), or as a binary message when `binary` is true. Copied
-- and queued; never blocks. Raises WS_ERR_INVALID_STATE unless OPEN.
function WebSocket:send(data, binary)
    if type(data) ~= "string" then
        bad_argument("send() takes a string, not " .. type(data))
    end
    local handle = handle_of(self)
    if binary then
        check(lib.ws_send_binary(handle, data, #data))
    else
        check(lib.ws_send_text(handle, data, #data))
    end
end

--- ws:send_binary(data): the same as ws:send(data, true).
function WebSocket:send_binary(data)
    return self:send(data, true)
end

--- ws:close([code [, reason]]): starts the closing handshake (or aborts a
-- connection attempt: close event 1006). code is 1000 or 3000-4999; a
-- reason without a code closes with 1000, as the browser does. Closing a
-- closed or freed socket does nothing.
function WebSocket:close(code, reason)
    local handle = handles[self._key]
    if handle == nil then
        return
    end
    if code == nil and reason == nil then
        check(lib.ws_close(handle))
        return
    end
    code = integer(code or 1000, 0, 0xFFFF, "close code")
    if reason ~= nil and (type(reason) ~= "string" or reason:find("\0", 1, true)) then
        bad_argument("close reason must be a string without NUL bytes")
    end
    check(lib.ws_close_ex(handle, code, reason))
end

--- ws:reconnect(): drops the connection (closing it with 1000 when open)
-- and connects again at once; only with the reconnect option, and not
-- once close() was called (WS_ERR_INVALID_STATE).
function WebSocket:reconnect()
    check(lib.ws_reconnect(handle_of(self)))
end

--- ws:set_header(name, value): sets (value nil: removes) a header of the
-- next opening handshakes, e.g. a fresh token from a reconnecting callback.
function WebSocket:set_header(name, value)
    check(lib.ws_set_header(handle_of(self), tostring(name), value ~= nil and tostring(value) or nil))
end

--- ws:set_buffered_amount_low_threshold(bytes): a "bufferedamountlow"
-- event fires each time ws.bufferedAmount falls from above `bytes` to at
-- or below it (default 0), so a producer can wait for room.
function WebSocket:set_buffered_amount_low_threshold(bytes)
    check(lib.ws_set_buffered_amount_low_threshold(handle_of(self), integer(bytes, 0, 2 ^ 52, "threshold")))
end

--- ws:ping([data]): sends a ping now, ahead of queued messages, with the
-- string `data` (at most 125 bytes, default "") as its payload; its pong
-- sets last_rtt_us in ws:stats(). Raises WS_ERR_INVALID_STATE unless OPEN.
function WebSocket:ping(data)
    data = data or ""
    if type(data) ~= "string" then
        bad_argument("ping() takes a string, not " .. type(data))
    end
    check(lib.ws_ping(handle_of(self), data, #data))
end

--- ws:stats(): what the socket has moved, over all its connections, as a
-- table of numbers named as the fields of ws_stats in include/wsembed.h:
-- bytes_sent, bytes_received (on the wire), messages_sent,
-- messages_received, frames_sent, frames_received, payload_bytes_sent,
-- payload_bytes_received, handshake_ms, last_rtt_us, connections,
-- pongs_received, pings_sent, pings_answered (wait for it to grow to know
-- a ping's round trip is in). Published by wsembed's IO thread as it
-- works, so they may trail the wire by a step. Still readable after close
-- and free() (the counts at free()).
function WebSocket:stats()
    local handle = handles[self._key]
    if handle == nil and self._stats then
        return self._stats
    end
    return read_stats(handle_of(self))
end

--- ws:free(): releases the native socket now (an open one is closed with
-- 1001 in the background, without further events). Idempotent.
function WebSocket:free()
    local handle = handles[self._key]
    if handle then
        self._protocol = read_string(lib.ws_protocol, handle)
        self._extensions = read_string(lib.ws_extensions, handle)
        self._response_status = tonumber(lib.ws_response_status(handle))
        -- free() must free even if the counters cannot be read (a
        -- library without ws_get_stats): they are a nicety here.
        local ok, stats = pcall(read_stats, handle)
        self._stats = ok and stats or nil
        release(self._key)
    end
end

-- Options for WebSocket(url, protocols, options): times in seconds (as in
-- the Python binding), sizes in bytes.
local OPTIONS = {
    connect_timeout = { "ws_options_set_connect_timeout_ms", 1000 },
    -- Seconds one address of the server gets before the next is tried
    -- beside it (default 0.25, RFC 8305); 0: one at a time.
    happy_eyeballs_delay = { "ws_options_set_happy_eyeballs_delay_ms", 1000 },
    close_timeout = { "ws_options_set_close_timeout_ms", 1000 },
    ping_interval = { "ws_options_set_ping_interval_ms", 1000 },
    pong_timeout = { "ws_options_set_pong_timeout_ms", 1000 },
    max_message_size = { "ws_options_set_max_message_size", 1 },
    max_send_queue = { "ws_options_set_max_send_queue", 1 },
    proxy = { "ws_options_set_proxy" },
    ca_file = { "ws_options_set_ca_file" },
    insecure_skip_verify = { "ws_options_set_insecure_skip_verify" },
    -- Offer permessage-deflate (true/false); the server may decline.
    deflate = { "ws_options_set_deflate" },
    -- HTTP redirects of the handshake to follow (default 0: refused).
    max_redirects = { "ws_options_set_max_redirects", 1, 0xFFFFFFFF },
    -- Reconnect automatically after a lost connection (true/false): each
    -- loss is a "reconnecting" event, and "open" comes again. The delays
    -- are the library's defaults (1 s growing to 30 s, ±20 %).
    reconnect = { "ws_options_set_reconnect" },
    -- Consecutive failed attempts before giving up (0: never).
    reconnect_max_attempts = { "ws_options_set_reconnect_max_attempts", 1, 0xFFFFFFFF },
    -- Seconds a connection must stay open to reset the count (default 5).
    reconnect_stable = { "ws_options_set_reconnect_stable_ms", 1000 },
}

local function configure(opts, protocols, options)
    check(lib.ws_options_set_dispatcher(opts, get_dispatcher()))
    if type(protocols) == "string" then
        protocols = { protocols }
    end
    for _, protocol in ipairs(protocols or {}) do
        check(lib.ws_options_add_protocol(opts, tostring(protocol)))
    end
    for name, value in pairs(options or {}) do
        if name == "headers" then
            -- { Name = "value" } or a list of { name, value } pairs.
            for k, v in pairs(value) do
                if type(k) == "number" then
                    k, v = v[1], v[2]
                end
                check(lib.ws_options_add_header(opts, tostring(k), tostring(v)))
            end
        else
            local setter = OPTIONS[name]
            if not setter then
                bad_argument("unknown WebSocket option " .. tostring(name))
            end
            local scale = setter[2]
            if scale then
                local max = setter[3] or (scale == 1 and 2 ^ 53 or 0xFFFFFFFF)
                if type(value) ~= "number" then
                    bad_argument(name .. " must be a number")
                end
                value = integer(math.ceil(value * scale), 0, max, name .. (scale == 1 and "" or " (ms)"))
            end
            check(lib[setter[1]](opts, value))
        end
    end
end

--- websocket.WebSocket(url [, protocols [, options]]): starts connecting and
-- returns at once, in state CONNECTING. protocols: a subprotocol or a list
-- of them. options: see OPTIONS above, plus headers. Raises an error
-- object for a bad URL (WS_ERR_INVALID_URL) or wss:// without TLS
-- (WS_ERR_UNSUPPORTED).
function M.WebSocket(url, protocols, options)
    if type(url) ~= "string" then
        bad_argument("WebSocket() needs a URL string, not " .. type(url))
    end
    local opts = lib.ws_options_new()
    if opts == nil then
        raise(C.WS_ERR_INTERNAL, "out of memory")
    end
    local ok, handle = pcall(function()
        configure(opts, protocols, options)
        local handle = lib.ws_open_ex(url, opts)
        if handle == 0 then
            raise() -- before ws_options_free replaces the last error
        end
        return handle
    end)
    lib.ws_options_free(opts)
    if not ok then
        error(handle, 0)
    end

    local key = new_key()
    handles[key], bindings_of[key] = handle, {}
    local ws = setmetatable({ _key = key, _fns = {}, url = read_string(lib.ws_url, handle) }, WebSocketMeta)
    -- Frees the handle when Lua collects the WebSocket (plain tables have
    -- no __gc in LuaJIT; a cdata anchor does).
    ws._anchor = ffi.gc(ffi.new("char[1]"), function()
        release(key)
    end)
    objects[key], live[key] = ws, ws
    -- Our own close binding, bound first: a socket whose close ran is no
    -- longer kept alive, and run() stops waiting for it.
    local bound, err = pcall(add_binding, ws, C.WS_EVENT_CLOSE, function()
        live[key] = nil
        closed_now[#closed_now + 1] = ws -- its other close callbacks follow
    end, true)
    if not bound then
        release(key)
        error(err, 0)
    end
    return ws
end

--- websocket.websocket(url, ...): the same, by Brython's name.
M.websocket = M.WebSocket

---------------------------------------------------------------------------
-- Dispatching.

--- websocket.dispatch([timeout_ms [, max_events]]): runs the callbacks of
-- queued events here and returns how many ran. timeout_ms: 0 (default)
-- never waits, -1 waits for an event or wakeup(), n waits at most n ms.
-- max_events: 0 (default) runs all queued, n at most n. Raises the first
-- error a callback raised; not allowed from a callback.
function M.dispatch(timeout_ms, max_events)
    timeout_ms = integer(timeout_ms or 0, -1, 0x7FFFFFFF, "timeout_ms")
    max_events = integer(max_events or 0, 0, 2 ^ 53, "max_events")
    if dispatching then
        raise(C.WS_ERR_INVALID_STATE, "websocket.dispatch() called from a callback")
    end
    local d = get_dispatcher()
    dispatching = true
    local ran = lib.ws_dispatch(d, timeout_ms, max_events)
    dispatching = false
    for i = #closed_now, 1, -1 do
        closed_now[i] = nil
    end
    local err = callback_error
    callback_error = nil
    if err ~= nil then
        error(err, 0)
    end
    return check(ran)
end
-- LuaJIT must not compile the FFI call to ws_dispatch: a compiled C call
-- that calls back into Lua can be a VM panic ("bad callback"; LuaJIT's FFI
-- semantics, Callbacks), and it would be compiled, since most calls return
-- without calling back.
jit.off(M.dispatch)

--- websocket.fd(): the dispatcher's descriptor, readable while events wait.
-- Watch it for reading in a host loop and call dispatch() when readable.
-- Never read, write or close it.
function M.fd()
    return check(lib.ws_dispatcher_fd(get_dispatcher()))
end

--- websocket.wakeup(): makes a waiting dispatch() (or run()) return now.
function M.wakeup()
    check(lib.ws_dispatcher_wakeup(get_dispatcher()))
end

--- websocket.pending(): the number of sockets whose close has not run.
function M.pending()
    local n = 0
    for _ in pairs(live) do
        n = n + 1
    end
    return n
end

--- websocket.run([timeout_s]): dispatches until every socket is closed
-- (true) or the timeout passes (false). For scripts.
function M.run(timeout_s)
    local deadline = timeout_s and now() + timeout_s
    while next(live) ~= nil do
        -- Short waits so that Ctrl-C (checked between Lua instructions) works.
        local wait = 250
        if deadline then
            local left = deadline - now()
            if left <= 0 then
                return false
            end
            wait = math.min(wait, math.ceil(left * 1000))
        end
        M.dispatch(wait, 0)
    end
    return true
end
jit.off(M.run)

--- websocket.shutdown(): frees every socket of this module (without
-- further events), the dispatcher and the C callback. The module can be
-- used again afterwards (a new dispatcher is made). Not from a callback.
function M.shutdown()
    if dispatching then
        raise(C.WS_ERR_INVALID_STATE, "websocket.shutdown() called from a callback")
    end
    for key in pairs(handles) do
        local ws = objects[key]
        if ws then
            ws:free()
        else
            release(key)
        end
    end
    if dispatcher ~= nil then
        check(lib.ws_dispatcher_free(dispatcher))
        dispatcher = nil
    end
    if callback ~= nil then
        -- Safe: every socket that could call it is freed.
        callback:free()
        callback = nil
    end
end

return M
