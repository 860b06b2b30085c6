"""``python -m wsembed URL``: an interactive WebSocket client.

It is ``examples/wscat.c`` in Python, with the same output and exit
status, so that one can stand in for the other in scripts: each line of
standard input is sent as one message (text, or binary with
``--binary``; the newline is not sent); each message received is written
to standard output with a newline, text as it is, binary as a hex dump
(``[binary, 4 bytes] 00 01 fe ff``; raw with ``--binary``). Events go to
standard error, so standard output carries only messages. End of input or
Ctrl-C closes with 1000 and waits for the close; a second Ctrl-C kills.
A server that closes first ends the program at once, even while it waits
for input.

Exit status: 0 after a clean close, 1 when the connection could not be
opened or failed, or the close was not clean, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import threading

from . import __version__, errors, has_deflate, has_tls, version
from ._options import DEFAULT_MAX_SEND_QUEUE, max_send_queue, native_options
from .websocket import WebSocket

# For the type checker only: annotations are not evaluated at run time
# (the __future__ import), so `import wsembed` does not load typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType
    from typing import Any, Callable, Dict, List, Optional, Tuple, Union

    from ._events import Event

PROG = "python -m wsembed"

# How often the waits look at the Ctrl-C flag. The signal handler cannot
# wake a wait itself (it may run while this thread holds the lock), and
# the signal may even be delivered to another thread (the IO thread does
# not block it), so a wait never sleeps longer than this.
_TICK = 0.1
_READ_SIZE = 65536

_stderr_lock = threading.Lock()


def _report(*lines: str) -> None:
    """Lines on standard error, together, though the IO thread and the
    input thread report too."""
    text = "".join("wsembed: " + line + "\n" for line in lines)
    with _stderr_lock:
        try:
            sys.stderr.write(text)
            sys.stderr.flush()
        except (AttributeError, OSError, ValueError):
            # No standard error (pythonw) or a closed one: nowhere to say it.
            pass


class _Session:
    """What the callbacks (on the IO thread), the input thread and the
    Ctrl-C handler tell the main thread."""

    def __init__(self, reconnect: bool, max_send_queue: int = DEFAULT_MAX_SEND_QUEUE) -> None:
        self.changed = threading.Condition()
        self.reconnect = reconnect
        self.max_send_queue = max_send_queue
        # The input thread bound the drain signal (a line found the send
        # queue full): from then on the library watches for it.
        self.draining = False
        self.opened = False
        self.failed = False  # an error event came
        self.closed = False
        self.clean = False  # the close event's wasClean
        self.input_done = False  # end of input, or the socket took no more
        self.output_failed = False
        # Set by the Ctrl-C handler without the lock, which its thread may
        # already hold; read by the waits at each tick.
        self.interrupted = False
        # Counts the events that change the connection, so that a line
        # refused between two connections waits for the next one.
        self.events = 0

    def update(self, **changes: object) -> None:
        with self.changed:
            for name, value in changes.items():
                setattr(self, name, value)
            self.events += 1
            self.changed.notify_all()

    def wait(self, predicate: Callable[[], bool]) -> None:
        with self.changed:
            while not predicate():
                self.changed.wait(_TICK)

    @property
    def over(self) -> bool:
        """No line should be sent any more."""
        return self.closed or self.interrupted


# ----- the events --------------------------------------------------------


def _refusal(ws: WebSocket, status: int) -> List[str]:
    """What a server that refused the handshake said, as wscat prints it:
    the status, the headers that tell what to do next, and the body (a hex
    dump if it holds control characters, binary or terminal escapes)."""
    lines = ["refused with HTTP {}".format(status)]
    for name in ("WWW-Authenticate", "Retry-After", "Location"):
        try:
            value = ws.response_headers.get(name)
        except errors.WebSocketError:
            value = None
        if value is not None:
            lines.append("{}: {}".format(name, value))
    body = ws.response_body
    if body:
        printable = all(byte >= 0x20 and byte != 0x7F or byte in b"\n\r\t" for byte in body)
        if printable:
            text = body.decode("utf-8", "replace")
            # _report ends it with a newline: one it already has would
            # print an empty line.
            text = text[:-1] if text.endswith("\n") else text
            lines.append("body ({} bytes):\n{}".format(len(body), text))
        else:
            lines.append("body: " + _hex_dump(body))
    return lines


def _hex_dump(data: bytes) -> str:
    dump = "[binary, {} bytes]".format(len(data))
    return dump + " " + data.hex(" ") if data else dump


def _bind_events(ws: WebSocket, session: _Session, binary: bool, out: Any) -> None:
    # `out`: sys.stdout.buffer, or None where there is none (AttributeError).
    def on_open() -> None:
        line = "connected to " + ws.url
        if ws.protocol:
            line += ' (subprotocol "{}")'.format(ws.protocol)
        if ws.extensions:
            line += ' (extensions "{}")'.format(ws.extensions)
        _report(line)
        session.update(opened=True)

    def on_message(evt: Event) -> None:
        data: Any = evt.data
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif not binary:
            data = _hex_dump(data).encode("ascii")
        try:
            out.write(data + b"\n")
            out.flush()
        except (AttributeError, OSError, ValueError) as error:
            if session.output_failed:
                return
            # The reader is gone (`| head -1`): nothing left to print to.
            session.update(output_failed=True)
            _report("standard output: {}".format(error))
            _silence(out)
            ws.close(1000)

    def on_error(evt: Event) -> None:
        lines = ["error: {} [{}]".format(evt.reason, errors.strerror(evt.error_code))]
        if evt.status:
            lines += _refusal(ws, evt.status)
        _report(*lines)
        session.update(failed=True)

    def on_close(evt: Event) -> None:
        _report(
            'closed: code {}, reason "{}", {}'.format(
                evt.code, evt.reason, "clean" if evt.wasClean else "not clean"
            )
        )
        session.update(closed=True, clean=evt.wasClean)

    def on_reconnecting(evt: Event) -> None:
        line = "connection lost: code {}".format(evt.code)
        if evt.reason:
            line += ', "{}"'.format(evt.reason)
        if evt.error_code:
            line += " [{}]".format(errors.strerror(evt.error_code))
        line += "; reconnecting in {} ms (attempt {})".format(
            int(round(evt.delay * 1000)), evt.attempt
        )
        _report(line)
        session.update()

    ws.bind("open", on_open)
    ws.bind("message", on_message)
    ws.bind("error", on_error)
    ws.bind("close", on_close)
    ws.bind("reconnecting", on_reconnecting)


def _silence(out: Any) -> None:
    """Points standard output at the null device, so that the interpreter's
    flush at exit does not fail again on the broken pipe."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, out.fileno())
        os.close(null)
    except (AttributeError, OSError, ValueError):
        pass


# ----- the input ---------------------------------------------------------


def _send_line(
    ws: WebSocket, session: _Session, line: Union[bytes, bytearray], binary: bool
) -> bool:
    """Sends one line. A full send queue is waited out (the peer is slow);
    between two connections (``--reconnect``) the line waits for the next
    one; other refusals are reported and the line dropped. False when the
    socket takes no more (it is closing or closed)."""
    data: Union[str, bytes]
    if binary:
        data = bytes(line)
    else:
        try:
            data = line.decode("utf-8")
        except UnicodeDecodeError:
            _report("line not sent: not valid UTF-8 (use --binary for non-UTF-8 input)")
            return True
    while not session.over:
        events = session.events
        try:
            ws.send(data)
            return True
        except errors.QueueFullError:
            _wait_for_room(ws, session, len(line))
        except errors.InvalidStateError:
            if not session.reconnect:
                return False
            session.wait(lambda: session.over or session.events != events)
        except (ValueError, errors.WebSocketError) as error:
            _report("line not sent: {}".format(error))
            return True
    return False


def _wait_for_room(ws: WebSocket, session: _Session, size: int) -> None:
    """Waits until a message of ``size`` bytes fits in the send queue (or
    the socket is over), woken by its ``bufferedamountlow`` event rather
    than polling: set to fire once the message fits, and checked against
    ``bufferedAmount`` first, since the queue may have drained before."""
    need = max(session.max_send_queue - size, 0)
    try:
        if not session.draining:
            ws.bind("bufferedamountlow", session.update)
            session.draining = True
        if ws.bufferedAmountLowThreshold != need:
            ws.bufferedAmountLowThreshold = need
    except errors.InvalidStateError:
        # Freed as the program ends: the next send says so.
        return
    session.wait(
        lambda: session.over or ws.bufferedAmount <= need or ws.readyState != ws.OPEN
    )


def _pump_input(ws: WebSocket, session: _Session, binary: bool, fd: int = 0) -> None:
    """Reads standard input and sends each line, until end of input or the
    socket taking no more. Reads the descriptor, not ``sys.stdin``: the
    program may end while this thread waits for input, and a thread blocked
    inside ``sys.stdin``'s buffer holds a lock that the interpreter's exit
    would wait for."""
    pending = bytearray()
    try:
        while not session.over:
            try:
                chunk = os.read(fd, _READ_SIZE)
            except OSError:
                chunk = b""  # a closed or unreadable input ends like an empty one
            if not chunk:
                # A last line without a newline is still a line.
                if pending:
                    _send_line(ws, session, pending, binary)
                return
            if b"\n" not in chunk:
                pending += chunk
                continue
            lines = chunk.split(b"\n")
            pending += lines[0]
            lines[0] = pending
            pending = bytearray(lines.pop())
            for line in lines:
                if not _send_line(ws, session, line, binary):
                    return
    finally:
        session.update(input_done=True)


# ----- the command line -----------------------------------------------------


def _header(text: str) -> Tuple[str, str]:
    # "Name: value": the name ends at the first colon; the value starts
    # after the blanks that follow it.
    name, colon, value = text.partition(":")
    if not colon or not name:
        raise argparse.ArgumentTypeError('wants "Name: value", not {!r}'.format(text))
    return name, value.lstrip(" \t")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "An interactive WebSocket client: sends each line of standard input as a "
            "message and prints each message received; events go to standard error. "
            "Ctrl-C or end of input closes."
        ),
        epilog=(
            "Exit status: 0 after a clean close, 1 when the connection could not be "
            "opened, failed or did not close cleanly, 2 for bad arguments."
        ),
        allow_abbrev=False,
    )
    add = parser.add_argument
    add("url", metavar="URL", help="a ws:// or wss:// URL")
    add("-H", "--header", type=_header, action="append", default=[], metavar="HEADER",
        help='a header for the opening handshake, "Name: value" (repeatable)')
    add("-p", "--subprotocol", "--protocol", dest="subprotocols", action="append", default=[],
        metavar="NAME", help="offer a subprotocol (repeatable)")
    add("--ca", metavar="FILE", help="also trust the CA certificates in a PEM file")
    add("--insecure", action="store_true", help="do not check the server's certificate")
    add("--deflate", action="store_true", help="offer compression (permessage-deflate)")
    add("--reconnect", action="store_true", help="reconnect after a lost connection")
    add("--binary", action="store_true", help="send lines as binary, print binary raw")
    add("--proxy", metavar="URL",
        help='an http://, https://, socks5:// or socks5h:// proxy; "" for none, '
        "whatever the environment says")
    add("--no-proxy-env", action="store_true", help="ignore ws_proxy, http_proxy, all_proxy...")
    add("--no-proxy", metavar="LIST", help="hosts to reach directly (replaces no_proxy)")
    add("--stats", action="store_true",
        help="print the connection's counters to standard error at the end")
    add("--version", action="version",
        version="wsembed {} (library {}, TLS {}, deflate {})".format(
            __version__, version(), "yes" if has_tls() else "no",
            "yes" if has_deflate() else "no"))
    return parser


def _options(args: argparse.Namespace) -> List[Tuple[str, Dict[str, Any]]]:
    """``(flag, WebSocket keyword options)`` for each option given."""
    given: List[Tuple[str, Dict[str, Any]]] = [
        ("-H", {"headers": [header]}) for header in args.header
    ]
    given += [("-p", {"protocols": [name]}) for name in args.subprotocols]
    if args.ca is not None:
        given.append(("--ca", {"ca_file": args.ca}))
    if args.insecure:
        given.append(("--insecure", {"insecure_skip_verify": True}))
    if args.deflate:
        given.append(("--deflate", {"deflate": True}))
    if args.reconnect:
        given.append(("--reconnect", {"reconnect": True}))
    if args.proxy is not None:
        given.append(("--proxy", {"proxy": args.proxy}))
    if args.no_proxy_env:
        given.append(("--no-proxy-env", {"proxy_env": False}))
    if args.no_proxy is not None:
        given.append(("--no-proxy", {"no_proxy": args.no_proxy}))
    return given


def _check(given: List[Tuple[str, Dict[str, Any]]]) -> int:
    """Tries each option alone, so that a refusal names its flag, as
    wscat's does: 1 for what this build lacks, 2 for a bad value, else 0."""
    for flag, options in given:
        try:
            with native_options(**options):
                pass
        except NotImplementedError as error:
            _report("{} is unsupported: {}".format(flag, error))
            return 1
        except (ValueError, TypeError, errors.WebSocketError) as error:
            _report("{}: {}".format(flag, error))
            return 2
        if flag == "--insecure":
            _report("--insecure: the server's certificate is not checked")
    return 0


def _on_first_interrupt(session: _Session) -> Callable[[int, Optional[FrameType]], None]:
    def handler(signum: int, frame: Optional[FrameType]) -> None:
        # As wscat's SA_RESETHAND: the first Ctrl-C closes politely, a
        # second one kills.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        session.interrupted = True

    return handler


def _print_stats(ws: WebSocket) -> None:
    stats = ws.stats
    pairs = ("{}={}".format(field.name, getattr(stats, field.name))
             for field in dataclasses.fields(stats))
    _report("stats: " + " ".join(pairs))


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    given = _options(args)
    status = _check(given)
    if status:
        return status
    settings: Dict[str, Any] = {}
    for _, options in given:
        for name, value in options.items():
            if isinstance(value, list):
                settings.setdefault(name, []).extend(value)
            else:
                settings[name] = value

    session = _Session(args.reconnect, max_send_queue(settings))
    # Only when Ctrl-C raises KeyboardInterrupt as usual: a program started
    # with SIGINT ignored (in the background) keeps ignoring it.
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_first_interrupt(session))
    try:
        ws = WebSocket(args.url, **settings)
    except (ValueError, NotImplementedError, RuntimeError, errors.WebSocketError) as error:
        _report("cannot open {}: {}".format(args.url, error))
        return 1
    _bind_events(ws, session, args.binary, getattr(sys.stdout, "buffer", None))

    # Input is read only once the socket is open: until then a send would
    # be refused, and the lines wait in the pipe.
    session.wait(lambda: session.opened or session.over)
    if session.opened and not session.over:
        # A daemon: a server that closes first ends the program while this
        # thread still waits for input.
        threading.Thread(
            target=_pump_input, args=(ws, session, args.binary), name="wsembed-input", daemon=True
        ).start()
        session.wait(lambda: session.input_done or session.over)

    try:
        ws.close(1000)
    except errors.WebSocketError:
        pass  # already closing or closed
    session.wait(lambda: session.closed)
    if args.stats:
        _print_stats(ws)
    ws.free()
    return 0 if session.clean and not session.failed and not session.output_failed else 1


if __name__ == "__main__":
    sys.exit(main())
