"""Where a training run's time goes: each phase is timed where it happens
(`with PHASES.timing("saving"): ...`) and the total per phase is logged at the end."""

import logging
import time
from contextlib import contextmanager

log = logging.getLogger("filejsonpytorch")
ORDER = ("reading", "vocabularies", "training", "validation", "distillation", "saving", "reports")


class PhaseTimes:
    def __init__(self):
        self.seconds = {}

    def reset(self):
        self.seconds.clear()

    @contextmanager
    def timing(self, phase):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - started

    def add(self, seconds):
        """Adds {phase: seconds} timed elsewhere (a worker process)."""
        for phase, value in seconds.items():
            self.seconds[phase] = self.seconds.get(phase, 0.0) + value

    def log(self):
        if self.seconds:
            log.info("time spent: %s", ", ".join(f"{phase} {self.seconds[phase]:.1f} s"
                                                  for phase in ORDER if phase in self.seconds))


#: the one run of this process
PHASES = PhaseTimes()
