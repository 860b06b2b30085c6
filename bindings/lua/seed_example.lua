--[[
The example of Brython's browser.websocket documentation, in LuaJIT: open
a socket, bind open/message/error/close, send what the user typed, close.
The page's buttons become the program's steps, its alerts prints.

    luajit bindings/lua/seed_example.lua URL [MESSAGE...]

Sends each MESSAGE (or "Hello from wsembed"), one at a time, prints each
message received, then closes; exits with 0 when every message came back.
Try it against the project's echo server:

    cargo build --release --lib --example echo_server
    target/release/examples/echo_server 0      # prints its URL
    luajit bindings/lua/seed_example.lua ws://127.0.0.1:PORT/ "Bonjour" "¡Hola! ✓"
]]

-- Find wsembed.lua next to this file, wherever it is run from.
local here = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
package.path = here .. "/?.lua;" .. package.path

local websocket = require("wsembed")

local DEADLINE = 30 -- seconds

local url = arg[1]
if not url then
    io.stderr:write(("usage: %s ws://host:port/ [message...]\n"):format(arg[0]))
    os.exit(2)
end
local messages = { select(2, unpack(arg)) }
if #messages == 0 then
    messages = { "Hello from wsembed" }
end

local ws, echoed, failed = nil, 0, false

local function send(data)
    if data then
        ws:send(data)
    end
end

local function close_connection()
    ws:close()
end

local function on_open(evt)
    print("Connection open")
    -- One at a time, as a person clicking "send" would: the next one
    -- goes when this one has come back.
    send(messages[1])
end

local function on_message(evt)
    -- message received from server
    if evt.binary then
        print(("Message received: %d bytes of binary"):format(#evt.data))
    else
        print("Message received: " .. evt.data)
    end
    echoed = echoed + 1
    if echoed < #messages then
        send(messages[echoed + 1])
    else
        close_connection()
    end
end

local function on_error(evt)
    print("Error: " .. evt.reason)
    failed = true
end

local function on_close(evt)
    -- websocket is closed
    local reason = evt.reason ~= "" and ": " .. evt.reason or ""
    print(("Connection closed (code %d, %s%s)"):format(evt.code, evt.wasClean and "clean" or "not clean", reason))
end

-- open a web socket
local ok, err = pcall(websocket.websocket, url)
if not ok then
    -- Where Brython's example says "WebSocket is not supported by your
    -- browser" (err.status is websocket.WS_ERR_UNSUPPORTED for wss://
    -- without TLS).
    print(("WebSocket is not supported here: %s (TLS: %s)"):format(tostring(err), tostring(websocket.has_tls())))
    os.exit(1)
end
ws = err

-- bind functions to web socket events
ws:bind("open", on_open)
ws:bind("message", on_message)
ws:bind("error", on_error)
ws:bind("close", on_close)

-- The callbacks run in here, on this thread, until the socket is closed.
if not websocket.run(DEADLINE) then
    close_connection()
    websocket.run(DEADLINE)
end
io.stdout:flush()
os.exit((echoed == #messages and not failed) and 0 or 1)
