"""Recording what callbacks receive, and waiting for it with a deadline."""

import contextlib
import sys
import threading

from servers import DEADLINE


class Recorder:
    """Binds to the four events of a WebSocket and keeps every Event, in
    order, with the thread it arrived on."""

    def __init__(self, ws=None):
        self.events = []
        self.threads = set()
        self._changed = threading.Condition()
        if ws is not None:
            for name in ("open", "message", "error", "close"):
                ws.bind(name, self)

    def __call__(self, event):
        with self._changed:
            self.events.append(event)
            self.threads.add(threading.get_ident())
            self._changed.notify_all()

    def types(self):
        return [e.type for e in self.events]

    def of(self, kind):
        return [e for e in self.events if e.type == kind]

    def data(self):
        return [e.data for e in self.of("message")]

    def wait(self, predicate, timeout=DEADLINE):
        """Waits until ``predicate(self)`` holds; fails the test at the
        deadline."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self), timeout):
                raise AssertionError("timed out; events so far: {}".format(self.events))

    def wait_type(self, kind, count=1):
        self.wait(lambda r: len(r.of(kind)) >= count)

    def wait_closed(self):
        self.wait_type("close")


@contextlib.contextmanager
def unraisable_reports():
    """Collects what reaches ``sys.unraisablehook`` meanwhile."""
    reports = []
    changed = threading.Condition()

    def hook(args):
        with changed:
            reports.append((args.exc_type, args.exc_value, args.err_msg, args.object))
            changed.notify_all()

    previous = sys.unraisablehook
    sys.unraisablehook = hook
    try:
        yield reports
    finally:
        sys.unraisablehook = previous
