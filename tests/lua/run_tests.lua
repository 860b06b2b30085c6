--[[
Tests of the LuaJIT binding (bindings/lua/wsembed.lua), plain asserts.

    luajit tests/lua/run_tests.lua [NAME-PATTERN]

tests/run-lua.sh starts the servers and sets:
  WSEMBED_ECHO_URL   the project's echo server (examples/echo_server.rs)
  WSEMBED_PY_URL     tests/lua/servers.py (Python websockets), no slash
  WSEMBED_HANG_URL   a TCP server that never answers (stays CONNECTING)
  WSEMBED_FREE_PORT  a port on 127.0.0.1 where nothing listens
Exits with 0 when every test passed.
]]

local ffi = require("ffi")

local here = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
local repo = here .. "/../.."
package.path = repo .. "/bindings/lua/?.lua;" .. package.path

local websocket = require("wsembed")

local ECHO_URL = assert(os.getenv("WSEMBED_ECHO_URL"), "set WSEMBED_ECHO_URL (tests/run-lua.sh does)")
local PY_URL = assert(os.getenv("WSEMBED_PY_URL"), "set WSEMBED_PY_URL (tests/run-lua.sh does)")
local HANG_URL = assert(os.getenv("WSEMBED_HANG_URL"), "set WSEMBED_HANG_URL (tests/run-lua.sh does)")
local FREE_PORT = assert(os.getenv("WSEMBED_FREE_PORT"), "set WSEMBED_FREE_PORT (tests/run-lua.sh does)")
local DEADLINE = 30 -- seconds

---------------------------------------------------------------------------
-- Helpers.

ffi.cdef([[
unsigned long pthread_self(void);
struct wsembed_test_pollfd { int fd; short events; short revents; };
int poll(struct wsembed_test_pollfd *fds, unsigned long nfds, int timeout);
]])

-- Dispatches until pred() holds; fails the test past the deadline.
local function wait_until(pred, what, timeout)
    local deadline = os.time() + (timeout or DEADLINE)
    while not pred() do
        assert(os.time() <= deadline, "timed out waiting for " .. (what or "a condition"))
        websocket.dispatch(50)
    end
end

-- Binds a recorder to every event of ws: rec.events is the list of the
-- events in the order they ran, rec.types() their types.
local function record(ws)
    local rec = { events = {} }
    for _, name in ipairs({ "open", "message", "error", "close" }) do
        ws:bind(name, function(evt)
            rec.events[#rec.events + 1] = evt
        end)
    end
    function rec.types()
        local t = {}
        for i, evt in ipairs(rec.events) do
            t[i] = evt.type
        end
        return table.concat(t, " ")
    end
    function rec.of(type)
        local t = {}
        for _, evt in ipairs(rec.events) do
            if evt.type == type then
                t[#t + 1] = evt
            end
        end
        return t
    end
    function rec.opened()
        return #rec.of("open") == 1
    end
    function rec.closed()
        return #rec.of("close") > 0
    end
    return rec
end

local function eq(actual, expected, what)
    if actual ~= expected then
        error(("%s: expected %s, got %s"):format(what or "value", tostring(expected), tostring(actual)), 2)
    end
end

-- Calls fn(...) and returns the error object it raised, which must be a
-- wsembed error of the given status when one is given.
local function raises(fn, status, ...)
    local ok, err = pcall(fn, ...)
    assert(not ok, "expected an error")
    if status then
        assert(getmetatable(err) == websocket.Error, "not a wsembed error: " .. tostring(err))
        eq(err.status, status, "error status (" .. tostring(err) .. ")")
        assert(err.message ~= "", "empty error message")
    end
    return err
end

-- Quotes a string for the shell.
local function sh(s)
    return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- os.execute's success: 0 in Lua 5.1 (LuaJIT), true with 5.2 compat.
local function succeeded(status)
    return status == 0 or status == true
end

local function read_file(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

local tests = {}
local function test(name, fn)
    tests[#tests + 1] = { name = name, fn = fn }
end

---------------------------------------------------------------------------
-- The declarations the module copied by hand are the header's.

test("cdefs and constants match include/wsembed.h", function()
    local header = read_file(repo .. "/include/wsembed.h")
    local function normalize(s)
        s = s:gsub("/%*.-%*/", " "):gsub("//[^\n]*", " ")
        s = s:gsub("%s+", " "):gsub(" ?([%(%)%{%};,%*]) ?", "%1")
        return s
    end
    local code = normalize(header)
    local checked = 0
    -- Each declaration of the cdef (up to ';' at the outer level).
    local cdef = normalize(websocket._CDEF)
    local depth, start = 0, 1
    for i = 1, #cdef do
        local c = cdef:sub(i, i)
        if c == "{" then
            depth = depth + 1
        elseif c == "}" then
            depth = depth - 1
        elseif c == ";" and depth == 0 then
            local decl = cdef:sub(start, i):gsub("^ ", "")
            start = i + 1
            assert(code:find(decl, 1, true), "not in include/wsembed.h: " .. decl)
            checked = checked + 1
        end
    end
    assert(checked >= 40, "too few declarations checked: " .. checked)
    -- Every constant of the header, with its value.
    local constants = 0
    for name, value in header:gmatch("#define (WS_[%w_]+) (%-?%d+)") do
        eq(websocket._C[name], tonumber(value), name)
        constants = constants + 1
    end
    local declared = 0
    for _ in pairs(websocket._C) do
        declared = declared + 1
    end
    eq(declared, constants, "number of constants")
    eq(websocket.WS_ERR_CONNECT, -21, "websocket.WS_ERR_CONNECT")
    eq(websocket.OPEN, 1, "websocket.OPEN")
    -- The version the module checked at load time.
    local major, minor = header:match("#define WSEMBED_VERSION_MAJOR (%d+)\n#define WSEMBED_VERSION_MINOR (%d+)")
    assert(websocket.version():match("^" .. major .. "%." .. minor .. "%."), websocket.version())
end)

---------------------------------------------------------------------------
-- The seed example, as a user runs it.

test("seed example (Brython's) against the project's echo server", function()
    local out = os.tmpname()
    local interpreter = arg[-1] or "luajit"
    local cmd = table.concat({ sh(interpreter), sh(repo .. "/bindings/lua/seed_example.lua"), sh(ECHO_URL),
        sh("Hello from wsembed"), sh("Bonjour"), sh("¡Hola! ✓"), ">", sh(out), "2>&1" }, " ")
    local status = os.execute(cmd)
    local output = read_file(out)
    os.remove(out)
    io.write((output:gsub("[^\n]+", "    | %0")))
    assert(succeeded(status), "seed example exit status: " .. tostring(status))
    local expected = table.concat({
        "Connection open",
        "Message received: Hello from wsembed",
        "Message received: Bonjour",
        "Message received: ¡Hola! ✓",
        "Connection closed (code 1005, clean)",
        "",
    }, "\n")
    eq(output, expected, "seed example output")
end)

test("seed example exits 1 when the connection is refused", function()
    local out = os.tmpname()
    local cmd = table.concat({ sh(arg[-1] or "luajit"), sh(repo .. "/bindings/lua/seed_example.lua"),
        sh("ws://127.0.0.1:" .. FREE_PORT .. "/"), ">", sh(out), "2>&1" }, " ")
    local status = os.execute(cmd)
    local output = read_file(out)
    os.remove(out)
    assert(not succeeded(status), "the seed example succeeded against a closed port")
    assert(output:find("Error: ", 1, true), output)
    assert(output:find("Connection closed (code 1006, not clean)", 1, true), output)
end)

---------------------------------------------------------------------------
-- Round trips.

test("text echo, state and attributes", function()
    local ws = websocket.WebSocket(ECHO_URL)
    eq(ws.readyState, websocket.CONNECTING, "readyState at first")
    eq(ws.url, ECHO_URL, "url")
    local rec = record(ws)
    wait_until(rec.opened, "open")
    eq(ws.readyState, websocket.OPEN, "readyState once open")
    eq(ws.protocol, "", "protocol (none offered)")
    local sent = { "Bonjour", "¡Hola! ✓", "", "with a \0 NUL inside", ("x"):rep(70000) }
    for _, text in ipairs(sent) do
        ws:send(text)
    end
    assert(type(ws.bufferedAmount) == "number")
    wait_until(function()
        return #rec.of("message") == #sent
    end, "the echoes")
    for i, evt in ipairs(rec.of("message")) do
        eq(evt.data, sent[i], "echo " .. i)
        eq(evt.binary, false, "echo " .. i .. " is text")
        eq(evt.target, ws, "evt.target")
        eq(evt.type, "message", "evt.type")
    end
    ws:close()
    -- readyState is the IO thread's: the handshake may already be over,
    -- before the close event is dispatched here.
    assert(ws.readyState == websocket.CLOSING or ws.readyState == websocket.CLOSED, "readyState after close()")
    eq(#rec.of("close"), 0, "close ran inside close()")
    wait_until(rec.closed, "close")
    eq(rec.types(), "open message message message message message close", "events")
    local close = rec.of("close")[1]
    eq(close.code, 1005, "close code (none sent)")
    eq(close.wasClean, true, "wasClean")
    eq(ws.readyState, websocket.CLOSED, "readyState at the end")
    eq(ws.bufferedAmount, 0, "bufferedAmount at the end")
    ws:close() -- closing a closed socket does nothing
end)

test("deflate: agreed by Python websockets, 300 KB of text echoed", function()
    assert(websocket.has_deflate(), "this build has deflate")
    local ws = websocket.WebSocket(PY_URL .. "/", nil, { deflate = true })
    local rec = record(ws)
    wait_until(rec.opened, "open")
    assert(ws.extensions:match("^permessage%-deflate"), "extensions: " .. ws.extensions)
    eq(ws.response_status, 101, "response_status once open")
    local parts = {}
    for i = 1, 10000 do
        parts[i] = ('{"id":%d,"name":"user%d"},'):format(i, i % 97)
    end
    local text = table.concat(parts)
    ws:send(text)
    wait_until(function()
        return #rec.of("message") == 1
    end, "the echo")
    eq(rec.of("message")[1].data, text, "echo")
    ws:close()
    wait_until(rec.closed, "close")
    ws:free()
    assert(ws.extensions:match("^permessage%-deflate"), "extensions after free")
    -- Not offered: nothing agreed.
    local plain = websocket.WebSocket(PY_URL .. "/")
    local prec = record(plain)
    wait_until(prec.opened, "open")
    eq(plain.extensions, "", "extensions without the offer")
    plain:close()
    wait_until(prec.closed, "close")
    raises(function()
        websocket.WebSocket(ECHO_URL, nil, { max_redirects = -1 })
    end, websocket.WS_ERR_INVALID_ARGUMENT)
end)

test("subprotocol and headers options", function()
    local ws = websocket.WebSocket(PY_URL .. "/protocol", { "nope", "superchat" })
    local rec = record(ws)
    wait_until(rec.opened, "open")
    eq(ws.protocol, "superchat", "protocol")
    ws:close()
    wait_until(rec.closed, "close")
    eq(ws.protocol, "superchat", "protocol after close")
    ws:free()
    eq(ws.protocol, "superchat", "protocol after free")

    ws = websocket.WebSocket(PY_URL .. "/headers", nil, { headers = { ["X-Lua"] = "yes" }, close_timeout = 2 })
    rec = record(ws)
    wait_until(function()
        return #rec.of("message") == 1
    end, "headers")
    -- HTTP header names are case-insensitive (wsembed sends "x-lua").
    assert(rec.of("message")[1].data:lower():find('"x%-lua": "yes"'), rec.of("message")[1].data)
    ws:close(1000)
    wait_until(rec.closed, "close")
    raises(websocket.WebSocket, websocket.WS_ERR_INVALID_ARGUMENT, ECHO_URL, nil, { no_such_option = 1 })
    raises(websocket.WebSocket, websocket.WS_ERR_INVALID_ARGUMENT, ECHO_URL, "not a token")
end)

test("binary: every byte value, and 300 KB", function()
    local ws = websocket.WebSocket(ECHO_URL)
    local rec = record(ws)
    local all = {}
    for i = 0, 255 do
        all[#all + 1] = string.char(i)
    end
    all = table.concat(all)
    local big = {}
    for i = 1, 300 * 1024 do
        big[i] = string.char((i * 7 + math.floor(i / 256)) % 256)
    end
    big = table.concat(big)
    ws:bind("open", function(evt)
        evt.target:send(all, true)
        evt.target:send_binary(big)
        evt.target:send_binary("")
    end)
    wait_until(function()
        return #rec.of("message") == 3 or rec.closed()
    end, "binary echoes")
    local messages = rec.of("message")
    eq(#messages, 3, "binary echoes")
    eq(messages[1].data, all, "256 byte values")
    eq(messages[1].binary, true, "evt.binary")
    eq(#messages[2].data, #big, "300 KB length")
    eq(messages[2].data, big, "300 KB")
    eq(messages[3].data, "", "empty binary")
    eq(messages[3].binary, true, "empty binary is binary")
    ws:close()
    wait_until(rec.closed, "close")
end)

test("text that is not UTF-8 is refused (WS_ERR_INVALID_UTF8)", function()
    local ws = websocket.WebSocket(ECHO_URL)
    local rec = record(ws)
    wait_until(rec.opened, "open")
    raises(ws.send, websocket.WS_ERR_INVALID_UTF8, ws, "\255\254")
    ws:send("\255\254", true)
    wait_until(function()
        return #rec.of("message") == 1
    end, "echo")
    eq(rec.of("message")[1].data, "\255\254", "binary echo")
    ws:close()
    wait_until(rec.closed, "close")
end)

---------------------------------------------------------------------------
-- Closing.

local function url_encode(s)
    return (s:gsub("[^%w%-_.~]", function(c)
        return ("%%%02X"):format(c:byte())
    end))
end

test("close codes and reasons sent by a server", function()
    local cases = {
        { 1000, "bye" },
        { 1002, "Protocol violation" },
        { 1011, "server bug" },
        { 3000, "unauthorized" },
        { 4000, "custom" },
        { 4999, "ça ferme" },
    }
    local recs = {}
    for i, case in ipairs(cases) do
        local ws = websocket.WebSocket(("%s/close/%d/%s"):format(PY_URL, case[1], url_encode(case[2])))
        recs[i] = record(ws)
    end
    assert(websocket.run(DEADLINE), "run() timed out")
    for i, case in ipairs(cases) do
        local rec = recs[i]
        eq(rec.types(), "open close", "events for " .. case[1])
        local close = rec.of("close")[1]
        eq(close.code, case[1], "code")
        eq(close.reason, case[2], "reason")
        eq(close.wasClean, true, "wasClean")
        eq(close.target.readyState, websocket.CLOSED, "readyState")
    end
end)

test("close(code, reason) from the client", function()
    local ws = websocket.WebSocket(PY_URL .. "/")
    local rec = record(ws)
    ws:bind("open", function()
        ws:close(4001, "client bye")
    end)
    assert(websocket.run(DEADLINE), "run() timed out")
    local close = rec.of("close")[1]
    eq(close.code, 4001, "code")
    eq(close.reason, "client bye", "reason")
    eq(close.wasClean, true, "wasClean")

    -- A reason alone closes with 1000, as the browser does.
    ws = websocket.WebSocket(PY_URL .. "/")
    rec = record(ws)
    ws:bind("open", function()
        ws:close(nil, "just a reason")
    end)
    assert(websocket.run(DEADLINE), "run() timed out")
    eq(rec.of("close")[1].code, 1000, "code")

    -- Bad codes are refused, not wrapped to 16 bits (70000 would be 4464).
    ws = websocket.WebSocket(HANG_URL)
    rec = record(ws)
    raises(ws.close, websocket.WS_ERR_INVALID_ARGUMENT, ws, 1001)
    raises(ws.close, websocket.WS_ERR_INVALID_ARGUMENT, ws, 70000)
    raises(ws.close, websocket.WS_ERR_INVALID_ARGUMENT, ws, 3000.5)
    raises(ws.close, websocket.WS_ERR_INVALID_ARGUMENT, ws, 1000, ("r"):rep(124))
    raises(ws.close, websocket.WS_ERR_INVALID_UTF8, ws, 1000, "\255")
    -- Closing while CONNECTING aborts: close 1006, no error.
    ws:close()
    wait_until(rec.closed, "close")
    eq(rec.types(), "close", "events of an aborted socket")
    eq(rec.of("close")[1].wasClean, false, "wasClean")
    eq(rec.of("close")[1].code, 1006, "code")
end)

test("stats() after an exchange; ping() and its round trip", function()
    local ws = websocket.WebSocket(ECHO_URL, nil, { happy_eyeballs_delay = 0.1 })
    local rec = record(ws)
    wait_until(rec.opened, "open")
    local s = ws:stats()
    eq(s.connections, 1, "connections once open")
    eq(s.messages_sent, 0, "messages_sent once open")
    assert(s.bytes_sent > 0 and s.bytes_received > 0, "the handshake's bytes")
    local sent, payload = { "one", "two ✓", ("x"):rep(300) }, 0
    for _, text in ipairs(sent) do
        ws:send(text)
        payload = payload + #text
    end
    ws:send_binary("\0\1\2\255")
    payload = payload + 4
    wait_until(function()
        return #rec.of("message") == 4
    end, "the echoes")
    -- The received-message counts are published before each callback, the
    -- other fields once per pass over the socket: wait for all of them.
    wait_until(function()
        local now = ws:stats()
        return now.messages_sent >= 4 and now.messages_received >= 4 and now.frames_sent >= 4
            and now.frames_received >= 4 and now.payload_bytes_sent >= payload
    end, "the counters")
    s = ws:stats()
    eq(s.messages_sent, 4, "messages_sent")
    eq(s.messages_received, 4, "messages_received")
    eq(s.payload_bytes_sent, payload, "payload_bytes_sent")
    eq(s.payload_bytes_received, payload, "payload_bytes_received")
    assert(s.frames_sent >= 4 and s.frames_received >= 4, "frames")
    eq(s.pongs_received, 0, "pongs before any ping")
    eq(s.pings_sent, 0, "pings before any ping")
    eq(s.last_rtt_us, 0, "last_rtt_us before any ping")
    for _, name in ipairs({ "bytes_sent", "bytes_received", "frames_sent", "frames_received", "handshake_ms",
        "last_rtt_us", "connections", "pongs_received", "pings_sent", "pings_answered" }) do
        eq(type(s[name]), "number", name)
    end

    ws:ping("rtt")
    wait_until(function()
        return ws:stats().pings_answered >= 1
    end, "the pong")
    s = ws:stats()
    eq(s.pings_sent, 1, "pings_sent")
    eq(s.pings_answered, 1, "pings_answered")
    eq(s.pongs_received, 1, "pongs_received")
    assert(s.last_rtt_us > 0, "last_rtt_us: " .. s.last_rtt_us)
    eq(s.messages_received, 4, "a pong is no message")
    ws:ping()
    ws:ping(("p"):rep(125))
    raises(ws.ping, websocket.WS_ERR_INVALID_ARGUMENT, ws, ("p"):rep(126))
    raises(ws.ping, websocket.WS_ERR_INVALID_ARGUMENT, ws, 42)
    ws:close()
    wait_until(rec.closed, "close")
    raises(ws.ping, websocket.WS_ERR_INVALID_STATE, ws)
    eq(ws:stats().messages_sent, 4, "messages_sent after close")
    ws:free()
    eq(ws:stats().messages_received, 4, "messages_received after free")
    eq(#rec.of("message"), 4, "pongs are not delivered as messages")

    -- Not open yet: no ping.
    local hanging = websocket.WebSocket(HANG_URL, nil, { happy_eyeballs_delay = 0 })
    raises(hanging.ping, websocket.WS_ERR_INVALID_STATE, hanging)
    eq(hanging:stats().connections, 0, "connections before open")
    hanging:free()
    raises(websocket.WebSocket, websocket.WS_ERR_INVALID_ARGUMENT, ECHO_URL, nil, { happy_eyeballs_delay = -1 })
    raises(websocket.WebSocket, websocket.WS_ERR_INVALID_ARGUMENT, ECHO_URL, nil, { happy_eyeballs_delay = "1" })
end)

---------------------------------------------------------------------------
-- Errors.

test("reconnect option: ws:reconnect() gives reconnecting, then open again", function()
    local ws = websocket.WebSocket(ECHO_URL, nil, { reconnect = true, reconnect_max_attempts = 3 })
    local rec = record(ws)
    ws:bind("reconnecting", function(evt)
        rec.events[#rec.events + 1] = evt
    end)
    wait_until(rec.opened, "open")
    ws:set_header("X-Session", "2")
    ws:reconnect()
    wait_until(function()
        return #rec.of("open") == 2
    end, "the second open")
    local lost = rec.of("reconnecting")[1]
    eq(lost.code, 1000, "the lost connection closed with 1000")
    eq(lost.attempt, 1, "attempt")
    eq(lost.delay, 0, "no delay")
    eq(rec.of("open")[2].attempt, 1, "the second open's attempt")
    ws:send("again")
    wait_until(function()
        return #rec.of("message") == 1
    end, "the echo")
    ws:close()
    wait_until(rec.closed, "close")
    local ok, err = pcall(ws.reconnect, ws)
    assert(not ok and err.status == websocket.WS_ERR_INVALID_STATE, tostring(err))
    ws:free()
end)

test("refused connection: error, then close 1006", function()
    local ws = websocket.WebSocket("ws://127.0.0.1:" .. FREE_PORT .. "/")
    local rec = record(ws)
    assert(websocket.run(DEADLINE), "run() timed out")
    eq(rec.types(), "error close", "events")
    local err, close = rec.events[1], rec.events[2]
    eq(err.error_code, websocket.WS_ERR_CONNECT, "error_code")
    eq(err.error_name, "WS_ERR_CONNECT", "error_name")
    assert(err.reason:find("refused"), err.reason)
    eq(close.code, 1006, "close code")
    eq(close.wasClean, false, "wasClean")
    raises(ws.send, websocket.WS_ERR_INVALID_STATE, ws, "too late")
end)

test("bad URLs raise at construction", function()
    for _, url in ipairs({ "http://127.0.0.1/", "not a url", "ws://127.0.0.1/#fragment", "" }) do
        local err = raises(websocket.WebSocket, websocket.WS_ERR_INVALID_URL, url)
        eq(err.status, websocket.WS_ERR_INVALID_URL, "status for " .. url)
        assert(tostring(err):match("^wsembed: .+ %(WS_ERR_INVALID_URL%)$"), tostring(err))
    end
    raises(websocket.WebSocket, websocket.WS_ERR_INVALID_ARGUMENT, nil)
    raises(websocket.WebSocket, websocket.WS_ERR_INVALID_ARGUMENT, 42)
end)

test("misuse raises", function()
    -- A server that never answers: against the echo server the handshake
    -- can finish on the IO thread before the send below.
    local hanging = websocket.WebSocket(HANG_URL)
    raises(hanging.send, websocket.WS_ERR_INVALID_STATE, hanging, "not open yet")
    hanging:free()
    local ws = websocket.WebSocket(ECHO_URL)
    raises(ws.send, websocket.WS_ERR_INVALID_ARGUMENT, ws, 42)
    raises(ws.bind, websocket.WS_ERR_INVALID_ARGUMENT, ws, "mesage", print)
    raises(ws.bind, websocket.WS_ERR_INVALID_ARGUMENT, ws, "message", "not a function")
    raises(websocket.dispatch, websocket.WS_ERR_INVALID_ARGUMENT, -2)
    raises(websocket.dispatch, websocket.WS_ERR_INVALID_ARGUMENT, 0.5)
    -- dispatch() from a callback is refused, not reentered.
    local inner
    ws:bind("open", function()
        inner = raises(websocket.dispatch, websocket.WS_ERR_INVALID_STATE)
        ws:close()
    end)
    assert(websocket.run(DEADLINE), "run() timed out")
    assert(inner, "the open callback did not run")
    ws:free()
    raises(ws.send, websocket.WS_ERR_INVALID_HANDLE, ws, "freed")
    raises(ws.bind, websocket.WS_ERR_INVALID_HANDLE, ws, "open", print)
end)

test("an error in a callback is raised by dispatch(), after the batch", function()
    local ws = websocket.WebSocket(ECHO_URL)
    local later = 0
    ws:bind("open", function()
        error("boom in open")
    end)
    ws:bind("open", function()
        later = later + 1
    end)
    local err
    wait_until(function()
        local ok, e = pcall(websocket.dispatch, 50)
        err = err or (not ok and e)
        return err
    end, "the error")
    assert(tostring(err):find("boom in open", 1, true), tostring(err))
    assert(tostring(err):find('"open" callback', 1, true), tostring(err))
    eq(later, 1, "the next callback of the event still ran")
    ws:close()
    assert(websocket.run(DEADLINE), "run() timed out")
end)

---------------------------------------------------------------------------
-- Binding.

test("late bind: bound after open, still gets open; held messages too", function()
    local ws = websocket.WebSocket(PY_URL .. "/send/3")
    -- Open, with no callback bound: readyState is the IO thread's.
    local deadline = os.time() + DEADLINE
    while ws.readyState ~= websocket.OPEN do
        assert(os.time() <= deadline, "never opened")
        websocket.dispatch(10)
    end
    -- Give the server's three messages time to arrive and be held.
    websocket.dispatch(200)
    local opened, messages = 0, {}
    ws:bind("open", function(evt)
        eq(evt.type, "open", "late event type")
        opened = opened + 1
    end)
    eq(opened, 0, "open ran inside bind()")
    ws:bind("message", function(evt)
        messages[#messages + 1] = evt.data
    end)
    eq(#messages, 0, "messages ran inside bind()")
    wait_until(function()
        return opened == 1 and #messages == 3
    end, "the late open and the held messages")
    eq(table.concat(messages, ","), "0,1,2", "held messages, in order")
    ws:close()
    assert(websocket.run(DEADLINE), "run() timed out")
    eq(opened, 1, "open ran once")
end)

test("bind twice binds once; unbind", function()
    local ws = websocket.WebSocket(ECHO_URL)
    local a, b = {}, {}
    local function fa(evt)
        a[#a + 1] = evt.data
    end
    local function fb(evt)
        b[#b + 1] = evt.data
    end
    ws:bind("message", fa):bind("message", fa):bind("message", fb)
    ws:bind("open", function()
        ws:send("one")
    end)
    wait_until(function()
        return #b == 1
    end, "first echo")
    eq(#a, 1, "a callback bound twice runs once")
    ws:unbind("message", fa)
    ws:unbind("message", fa) -- not bound: nothing
    ws:send("two")
    wait_until(function()
        return #b == 2
    end, "second echo")
    eq(#a, 1, "an unbound callback does not run")
    ws:unbind("message") -- all of them
    local closes = 0
    ws:bind("close", function()
        closes = closes + 1
    end)
    ws:unbind("close") -- the module's own close binding stays
    ws:bind("close", function()
        closes = closes + 1
    end)
    ws:close()
    assert(websocket.run(DEADLINE), "run() timed out: the module's close binding was removed")
    eq(closes, 1, "close callbacks")
end)

---------------------------------------------------------------------------
-- Threads: callbacks run on this Lua thread, inside dispatch().

test("callbacks run on the Lua thread, inside dispatch()", function()
    local main_thread = ffi.C.pthread_self()
    local inside = false
    local seen = {}
    local function check_thread(evt)
        -- Entered from wsembed's IO thread, LuaJIT would already have
        -- crashed; this says where we are anyway.
        assert(ffi.C.pthread_self() == main_thread, "callback on another thread")
        assert(inside, "callback outside dispatch()")
        seen[#seen + 1] = evt.type
    end
    local ws = websocket.WebSocket(ECHO_URL)
    for _, name in ipairs({ "open", "message", "error", "close" }) do
        ws:bind(name, check_thread)
    end
    ws:bind("open", function()
        ws:send("ping")
    end)
    ws:bind("message", function()
        ws:close()
    end)
    -- The socket opens on the IO thread; its events wait, undelivered,
    -- while nobody dispatches.
    local deadline = os.time() + DEADLINE
    while ws.readyState ~= websocket.OPEN do
        assert(os.time() <= deadline, "never opened")
        ffi.C.poll(nil, 0, 10)
    end
    ffi.C.poll(nil, 0, 100)
    eq(#seen, 0, "callbacks ran without dispatch()")
    inside = true
    assert(websocket.run(DEADLINE), "run() timed out")
    inside = false
    eq(table.concat(seen, " "), "open message close", "events")

    -- Dispatching from a coroutine runs the callbacks in that coroutine.
    ws = websocket.WebSocket(ECHO_URL)
    local ran_in
    ws:bind("open", function()
        ran_in = coroutine.running()
        ws:close()
    end)
    local co = coroutine.create(function()
        assert(websocket.run(DEADLINE))
    end)
    assert(coroutine.resume(co))
    eq(ran_in, co, "coroutine of the callback")
end)

test("a JIT-compiled loop around dispatch() still takes callbacks", function()
    -- LuaJIT compiles hot loops; an FFI call compiled in a trace must not
    -- call back into Lua. Idle dispatches make the loop hot first.
    local idle = 0
    for _ = 1, 100000 do
        idle = idle + websocket.dispatch(0)
    end
    eq(idle, 0, "events while idle")
    local ws = websocket.WebSocket(ECHO_URL)
    local got = 0
    ws:bind("open", function()
        for i = 1, 500 do
            ws:send("m" .. i)
        end
    end)
    ws:bind("message", function(evt)
        got = got + 1
        eq(evt.data, "m" .. got, "echo order")
        if got == 500 then
            ws:close()
        end
    end)
    local deadline = os.time() + DEADLINE
    while websocket.pending() > 0 do
        assert(os.time() <= deadline, "timed out")
        websocket.dispatch(0, 1) -- one event per call: many calls
    end
    eq(got, 500, "echoes")
end)

test("fd(): a host loop polls the descriptor and dispatches", function()
    local fd = websocket.fd()
    assert(type(fd) == "number" and fd >= 0, "fd")
    eq(websocket.fd(), fd, "same descriptor each time")
    local pfd = ffi.new("struct wsembed_test_pollfd[1]")
    pfd[0].fd, pfd[0].events = fd, 1 -- POLLIN
    local echoed
    local ws = websocket.WebSocket(ECHO_URL)
    ws:bind("open", function()
        ws:send("via poll")
    end)
    ws:bind("message", function(evt)
        echoed = evt.data
        ws:close()
    end)
    local wakeups, deadline = 0, os.time() + DEADLINE
    while websocket.pending() > 0 do
        assert(os.time() <= deadline, "timed out")
        -- As luv's uv.new_poll(fd):start("r", ...) or any select loop.
        if ffi.C.poll(pfd, 1, 1000) > 0 then
            wakeups = wakeups + 1
            websocket.dispatch(0)
        end
    end
    eq(echoed, "via poll", "echo")
    assert(wakeups >= 3, "wakeups: " .. wakeups)
    -- Every event taken: not readable any more (level-triggered).
    websocket.dispatch(0)
    eq(ffi.C.poll(pfd, 1, 0), 0, "readable with nothing queued")
    -- wakeup() makes a waiting dispatch return at once.
    websocket.wakeup()
    local t0 = os.time()
    eq(websocket.dispatch(-1), 0, "dispatch after wakeup")
    assert(os.time() - t0 <= 1, "dispatch(-1) waited despite wakeup()")
end)

---------------------------------------------------------------------------
-- Many sockets, lifetime.

test("100 sockets at once, echoing and closing", function()
    local n, echoed, closed = 100, 0, 0
    local collected = setmetatable({}, { __mode = "k" })
    for i = 1, n do
        local url = i % 2 == 0 and ECHO_URL or PY_URL .. "/"
        local ws = websocket.WebSocket(url)
        collected[ws] = true
        local text = "socket " .. i
        ws:bind("open", function(evt)
            evt.target:send(text)
        end)
        ws:bind("message", function(evt)
            eq(evt.data, text, "echo of socket " .. i)
            echoed = echoed + 1
            evt.target:close(1000, "done " .. i)
        end)
        ws:bind("close", function(evt)
            eq(evt.code, 1000, "close code of socket " .. i)
            eq(evt.wasClean, true, "wasClean of socket " .. i)
            closed = closed + 1
        end)
        -- No reference kept: open sockets are kept alive by the module.
    end
    collectgarbage()
    collectgarbage()
    eq(websocket.pending(), n, "pending sockets")
    assert(websocket.run(DEADLINE), "run() timed out")
    eq(echoed, n, "echoes")
    eq(closed, n, "closes")
    eq(websocket.pending(), 0, "pending after run()")
    -- Closed and unreferenced: collected (and freed by the collector).
    collectgarbage()
    collectgarbage()
    eq(next(collected), nil, "a closed socket was not collected")
end)

test("free(): no event after it, even while open", function()
    local ws = websocket.WebSocket(ECHO_URL)
    local rec = record(ws)
    wait_until(rec.opened, "open")
    ws:send("never seen")
    ws:free()
    ws:free() -- idempotent
    eq(ws.readyState, websocket.CLOSED, "readyState after free")
    eq(websocket.pending(), 0, "a freed socket is not pending")
    websocket.dispatch(300)
    eq(rec.types(), "open", "events after free")
    ws:close() -- nothing to do

    -- Freed from its own callback.
    ws = websocket.WebSocket(ECHO_URL)
    rec = record(ws)
    ws:bind("open", function()
        ws:free()
    end)
    ws:bind("open", function()
        error("ran after free()")
    end)
    wait_until(function()
        return websocket.pending() == 0
    end, "free from the callback")
    websocket.dispatch(100)
    eq(rec.types(), "open", "events")
end)

test("shutdown() frees everything; the module works again after", function()
    local ws = websocket.WebSocket(ECHO_URL)
    local rec = record(ws)
    websocket.shutdown()
    eq(ws.readyState, websocket.CLOSED, "readyState after shutdown")
    eq(websocket.pending(), 0, "pending after shutdown")
    eq(#rec.events, 0, "events after shutdown")
    -- A new dispatcher and callback are made on demand.
    local echoed
    ws = websocket.WebSocket(ECHO_URL)
    ws:bind("open", function()
        ws:send("again")
    end)
    ws:bind("message", function(evt)
        echoed = evt.data
        ws:close()
    end)
    assert(websocket.run(DEADLINE), "run() timed out")
    eq(echoed, "again", "echo after shutdown")
    websocket.shutdown()
end)

test("a second instance of the module (dofile) works beside the first", function()
    local other = dofile(repo .. "/bindings/lua/wsembed.lua")
    assert(other ~= websocket)
    local a, b = websocket.WebSocket(ECHO_URL), other.WebSocket(ECHO_URL)
    local ra, rb = record(a), record(b)
    a:bind("open", function()
        a:close()
    end)
    b:bind("open", function()
        b:close()
    end)
    assert(other.fd() ~= websocket.fd(), "instances share a dispatcher")
    assert(websocket.run(DEADLINE) and other.run(DEADLINE), "run() timed out")
    eq(ra.types(), "open close", "first instance")
    eq(rb.types(), "open close", "second instance")
    other.shutdown()
    websocket.shutdown()
end)

---------------------------------------------------------------------------

local pattern = arg[1]
local passed, failed = 0, {}
for _, t in ipairs(tests) do
    if not pattern or t.name:find(pattern) then
        io.write("-- ", t.name, "\n")
        io.flush()
        local ok, err = xpcall(t.fn, debug.traceback)
        -- Whatever a test left (a failed one, an open socket) is freed,
        -- so that the next one starts clean.
        local cleaned, cleanup_err = pcall(websocket.shutdown)
        if ok and not cleaned then
            ok, err = false, "websocket.shutdown() failed: " .. tostring(cleanup_err)
        end
        if ok then
            passed = passed + 1
            io.write("   ok\n")
        else
            failed[#failed + 1] = t.name
            io.write("   FAILED: ", tostring(err), "\n")
        end
    end
end
io.write(("lua: %d passed, %d failed (%s)\n"):format(passed, #failed, jit.version))
for _, name in ipairs(failed) do
    io.write("   failed: ", name, "\n")
end
os.exit(#failed == 0 and passed > 0 and 0 or 1)
