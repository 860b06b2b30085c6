"""How the blocking and asyncio clients wait for room in a full send queue.

The C ABI, like the browser's WebSocket, has no "drained" event: a send to
a full queue fails with ``WS_ERR_QUEUE_FULL`` and queues nothing, and the
queue empties as the peer reads. So those two clients retry after a pause
that doubles up to a bound, as browser code polls ``bufferedAmount``: a
producer faster than the peer slows to the peer's pace instead of failing.
"""

# The first pause is short, for a queue that was only briefly over its
# limit; the longest bounds how late a send may notice room.
FIRST_PAUSE = 0.0005
LONGEST_PAUSE = 0.05


def pauses():
    """Seconds to wait before each retry: doubling, then steady."""
    pause = FIRST_PAUSE
    while True:
        yield pause
        pause = min(pause * 2, LONGEST_PAUSE)
