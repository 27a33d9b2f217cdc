"""The stop request: SIGINT, SIGTERM or the stop file end training after the current batch."""

import logging
import os
import signal

log = logging.getLogger("filejsonpytorch")


class StopRequest:
    """Set by SIGINT/SIGTERM or the stop file (None: signals only); a second SIGINT aborts at once."""

    def __init__(self, stopfile):
        self.stopfile = stopfile
        self.reason = None
        if stopfile and os.path.exists(stopfile):
            log.warning("removing an old stop file %s", stopfile)
            os.remove(stopfile)

    def __enter__(self):
        self.previous = {n: signal.signal(n, self._signal) for n in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for number, handler in self.previous.items():
            signal.signal(number, handler)

    def _signal(self, number, frame):
        if self.reason and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.reason = signal.Signals(number).name

    def check(self):
        if self.reason is None and self.stopfile and os.path.exists(self.stopfile):
            self.reason = f"stop file {self.stopfile}"
            try:
                os.remove(self.stopfile)
            except OSError:
                pass
        return self.reason


def stop_file(args):
    """The stop file of a run: --stopfile, by default DATADIR/STOP."""
    return args.stopfile or os.path.join(args.datadir, "STOP")
