"""A socket's statistics (``ws_get_stats``) as a Python value, and how the
blocking and asyncio clients wait for a ping's answer.

The C ABI has no pong event: a pong only moves the counters. So waiting
for one means reading ``pings_answered`` until it grows past its value
before the ping. The round trip itself is timed by the IO thread when the
pong arrives, so the polling step bounds only how late the wait notices
it, never what it measures.
"""

import ctypes
import dataclasses

from . import _ffi, errors
from ._ffi import lib

# For the type checker only. No __future__ import of annotations here: it
# would turn the dataclass's field types (dataclasses.fields) into strings.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

# Between two reads of the counters while waiting for a pong: small next
# to any real round trip, and a read costs one foreign call.
PING_POLL_INTERVAL = 0.001
DEFAULT_PING_TIMEOUT = 10.0


@dataclasses.dataclass(frozen=True)
class Stats:
    """What a socket has moved, over every connection it made (with
    ``reconnect=True`` the totals run on across connections); read from
    ``ws.stats``, a snapshot that does not change afterwards.

    - ``bytes_sent``, ``bytes_received``: on the wire, frames, the opening
      handshake and TLS records included (not what went to a proxy);
    - ``messages_sent``, ``messages_received``: text and binary messages
      (sent once handed to the connection, not when ``send`` queued them);
    - ``frames_sent``, ``frames_received``: frames of every kind, pings,
      pongs and close frames included;
    - ``handshake_ms``: the latest connection's time from the start of its
      attempt to open, whole milliseconds (see ``handshake_time``);
    - ``last_rtt_us``: the round trip of the latest ping answered (ours or
      a keepalive's), microseconds (see ``last_rtt``);
    - ``payload_bytes_sent``, ``payload_bytes_received``: message payloads
      as the application sent and received them (uncompressed);
    - ``connections``: how many times the socket opened;
    - ``pongs_received``: asked for or not;
    - ``pings_sent``, ``pings_answered``: pings (``ping()``'s and
      keepalive's), and those answered by a pong with the same payload.

    The library publishes the counters after each step of work on the
    socket, so they may lag the wire by one step; the received-message
    counts are up to date before each message is delivered.
    """

    bytes_sent: int
    bytes_received: int
    messages_sent: int
    messages_received: int
    frames_sent: int
    frames_received: int
    handshake_ms: int
    last_rtt_us: int
    payload_bytes_sent: int
    payload_bytes_received: int
    connections: int
    pongs_received: int
    pings_sent: int
    pings_answered: int

    @property
    def last_rtt(self) -> "Optional[float]":
        """``last_rtt_us`` in seconds, or None before any ping was answered
        (the C field's 0 could also be a round trip under a microsecond)."""
        return self.last_rtt_us / 1e6 if self.pings_answered else None

    @property
    def handshake_time(self) -> "Optional[float]":
        """``handshake_ms`` in seconds, or None before the first open (a
        loopback handshake can take under the millisecond, which C gives
        as 0 too)."""
        return self.handshake_ms / 1e3 if self.connections else None


_FIELDS = tuple(field.name for field in dataclasses.fields(Stats))


def read(handle: int) -> Stats:
    """The :class:`Stats` of a live handle; ``InvalidStateError`` for a
    freed one."""
    c_stats = _ffi.ws_stats()
    c_stats.size = ctypes.sizeof(_ffi.ws_stats)
    errors.check(lib.ws_get_stats(handle, ctypes.byref(c_stats)))
    return Stats(*[getattr(c_stats, name) for name in _FIELDS])
