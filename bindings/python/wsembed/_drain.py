"""How the blocking and asyncio clients wait for room in a full send queue.

A send to a full queue fails with ``WS_ERR_QUEUE_FULL`` and queues nothing,
and the queue empties as the peer reads. The clients then wait for the
library's drain signal, the ``bufferedamountlow`` event, with its threshold
set so that the message fits when it fires, and send again: a producer
faster than the peer slows to the peer's pace, waking once per fall rather
than polling ``bufferedAmount``.

The listener is bound the first time a connection's queue is found full,
and stays: while one is bound the library compares ``bufferedAmount`` with
the threshold at every write, a cost only a producer that fills the queue
should pay.

A message larger than ``max_send_queue`` never fits, but it never waits
either: the library refuses it with ``WS_ERR_TOO_LARGE``, not
``WS_ERR_QUEUE_FULL``.
"""

from __future__ import annotations

from . import _ffi, errors

# For the type checker only: annotations are not evaluated at run time
# (the __future__ import), so `import wsembed` does not load typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, List

    from ._ffi import ws_event
    from ._native import Data, NativeSocket


def size_of(data: Data) -> int:
    """The bytes ``data`` counts for in ``bufferedAmount``: text as UTF-8."""
    if isinstance(data, str):
        return len(data) if data.isascii() else len(data.encode("utf-8"))
    return memoryview(data).nbytes


class Room:
    """The senders of one connection that wait for room, and the threshold
    that wakes them. Not locked: the blocking client uses it under its
    inbox's lock, the asyncio client on its loop's thread.

    Each sender needs ``bufferedAmount`` at or below ``limit - size`` (its
    *need*); the threshold is the lowest need of those waiting, so that
    every one of them is woken when the queue drains far enough (a higher
    one could leave a bigger message waiting on a fall that never comes).
    The event only wakes them: each looks at ``bufferedAmount`` itself,
    since a fall may come before the threshold is in place and never be
    reported.
    """

    __slots__ = ("_native", "_limit", "_needs", "_threshold", "waits")

    def __init__(
        self, native: NativeSocket, limit: int, on_low: Callable[[ws_event], None]
    ) -> None:
        self._native = native
        self._limit = limit
        self._needs: List[int] = []
        # The library's default, until set.
        self._threshold = 0
        # How many times a sender went to sleep: lets a test see that a
        # queue really filled.
        self.waits = 0
        native.bind(_ffi.WS_EVENT_BUFFERED_AMOUNT_LOW, on_low)

    def enter(self, size: int) -> int:
        """Counts in a sender of a message of ``size`` bytes; returns its
        need, for ``fits`` and ``leave``. Only lowers the threshold while
        others wait, which wakes them later, never too late."""
        need = max(self._limit - size, 0)
        self._set(min([need] + self._needs))
        self._needs.append(need)
        return need

    def leave(self, need: int) -> bool:
        """Counts a sender out. True when the others must look again: the
        threshold rose to their lowest need, and a fall that already went
        past it will not be reported."""
        needs = self._needs
        needs.remove(need)
        if needs and min(needs) != self._threshold:
            try:
                self._set(min(needs))
            except errors.InvalidStateError:
                # Freed meanwhile: the others' sends will say so.
                pass
            return True
        return False

    def fits(self, need: int) -> bool:
        """Whether to try the send again: there is room, or the connection
        is no longer open (then the send raises ``InvalidStateError``, and
        waiting would be for nothing)."""
        native = self._native
        return native.buffered_amount <= need or native.ready_state != _ffi.WS_OPEN

    def _set(self, threshold: int) -> None:
        # Skipped when unchanged: a steady producer of one message size
        # sets it once.
        if threshold != self._threshold:
            self._native.set_low_threshold(threshold)
            self._threshold = threshold
