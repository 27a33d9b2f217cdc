"""Logging to stderr (and a log file), and the error handling every entry point shares:
a user error is one clear line and its exit code; `--debug` adds the traceback."""

import logging
import os
import sys
import traceback

from .errors import EXIT_INTERNAL, UserError

log = logging.getLogger("filejsonpytorch")


def setup_logging(debug=False, logfile=None):
    log.handlers.clear()
    log.setLevel(logging.DEBUG if debug else logging.INFO)
    log.propagate = False
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(console)
    if logfile:
        try:
            handler = LogFile(logfile)
        except OSError as e:
            log.warning("cannot write the log file %s (%s); logging to stderr only", logfile, e.strerror)
            return
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        log.addHandler(handler)


class LogFile(logging.FileHandler):
    """The training log file. When it cannot be written (a full disk), it says so once on
    stderr and steps aside, instead of a traceback for every later message."""

    def __init__(self, path):
        super().__init__(path, mode="w", encoding="utf-8")

    def handleError(self, record):
        problem = sys.exc_info()[1]
        log.removeHandler(self)
        try:
            self.close()
            if os.path.isfile(self.baseFilename) and os.path.getsize(self.baseFilename) == 0:
                os.unlink(self.baseFilename)  # an empty log would only look like a run that logged nothing
        except OSError:
            pass
        reason = getattr(problem, "strerror", None) or problem
        log.warning("cannot write the log file %s any more (%s); logging to stderr only", self.baseFilename, reason)


def run_main(work, argv=None):
    """Runs `work()` and turns every failure into a message and an exit code."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        return work() or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        print(failure_message(e, "--debug" in argv), file=sys.stderr)
        return e.exit_code if isinstance(e, UserError) else EXIT_INTERNAL


def failure_message(error, debug=False):
    """The one line that reports a failure (`--debug` prints the traceback first)."""
    if debug:
        traceback.print_exception(type(error), error, error.__traceback__)
    if isinstance(error, UserError):
        return f"error: {error}"
    return f"internal error: {type(error).__name__}: {error} (run with --debug for the traceback)"
