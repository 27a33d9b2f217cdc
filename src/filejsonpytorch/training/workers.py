"""The networks of a cross-validation trained in up to --workers processes at once.

Each worker process (the spawn context: forking after torch started its threads is
unsafe) trains one network with `crossval.train_fold`, the code that trains it in the
main process, from the same initial weights and seeds, so the results are the same. The
worker sends everything that happens (log records, improvements, reports, the end)
through one queue; the main process alone logs, keeps the history file and writes the
model file, and it alone watches the stop file and the signals, relaying a stop to the
workers. A worker whose main process is gone ends within a second.
"""

import io
import logging
import logging.handlers
import os
import queue
import signal
import threading
import time

import torch
import torch.multiprocessing as mp

from ..errors import EnvironmentProblem, UserError
from ..logs import setup_logging
from ..network import build_network
from .cpu import cpu_settings
from .crossval import available_cores, train_fold
from .phases import PHASES
from .stop import StopRequest, stop_file

log = logging.getLogger("filejsonpytorch")
POLL_SECONDS = 0.2  # how often the main process looks at the stop file and its workers
CLOSE_SECONDS = 60  # how long the workers may take to stop and send their networks' ends
CLOSE_SECONDS_ON_ERROR = 5  # ... when the main process itself fails: it reads nothing more


def train_in_workers(cv, todo, workers):
    """Trains the networks `todo` of CrossValidation `cv` in `workers` processes, in their
    order, telling `cv` what each does as it happens; a worker's error is raised once the
    others have stopped and saved."""
    threads = max(1, available_cores() // workers)
    log.info("training %d networks in %d worker processes at once, %d torch thread%s each",
             len(todo), workers, threads, "" if threads == 1 else "s")
    pool = WorkerPool(cv, workers, threads)
    pending = list(todo)
    try:
        with StopRequest(stop_file(cv.args)) as stop:
            while pending or pool.running:
                while pending and len(pool.running) < workers:
                    pool.hand_out(pending.pop(0))
                pool.receive()
                if stop.check() and not pool.stopping.is_set():
                    log.info("stopping: %s", stop.reason)
                    pool.stopping.set()
                if pool.stopping.is_set():
                    pending.clear()  # a stop request or a worker's error: no network starts
    except BaseException:
        pool.close(drain=False)
        raise
    pool.close(drain=True)
    if pool.error is not None:
        raise pool.error


class WorkerPool:
    """The worker processes, started once, each training the networks handed to it one
    after another; one network per idle worker is handed out, so none waits in a queue."""

    def __init__(self, cv, workers, threads):
        self.cv = cv
        context = mp.get_context("spawn")
        self.jobs, self.events, self.stopping = context.Queue(), context.Queue(), context.Event()
        self.running = set()  # the networks handed out and not finished
        self.error = None
        self.processes = [context.Process(target=worker_main, daemon=True, name=f"worker-{n + 1}",
                                          args=(self.jobs, self.events, self.stopping, threads, cv.args.debug,
                                                os.getpid()))
                          for n in range(workers)]
        for process in self.processes:
            process.start()

    def hand_out(self, i):
        cv = self.cv
        self.jobs.put((cv.job(i), state_bytes(cv.members[i].state_dict()), cv.members[i].temperature, str(cv.device)))
        self.running.add(i)

    def close(self, drain):
        """Ends the workers: each stops what it trains, takes one None and returns. `drain`:
        what they still send (a network's end) is handled meanwhile; not when the main
        process itself failed."""
        self.stopping.set()
        for _ in self.processes:
            self.jobs.put(None)
        deadline = time.monotonic() + (CLOSE_SECONDS if drain else CLOSE_SECONDS_ON_ERROR)
        while any(p.is_alive() for p in self.processes) and time.monotonic() < deadline:
            if drain:
                self.receive()
            else:
                time.sleep(POLL_SECONDS)
        for process in self.processes:
            if process.is_alive():
                process.terminate()

    def receive(self):
        """Handles what the workers sent, waiting at most POLL_SECONDS for it."""
        self.notice_dead_workers()
        try:
            event = self.events.get(timeout=POLL_SECONDS)
        except queue.Empty:
            return
        if isinstance(event, logging.LogRecord):
            log.handle(event)
            return
        kind, i, *fields = event
        getattr(self, f"on_{kind}")(i, *fields)

    def on_improved(self, i, state, temperature, history):
        self.cv.member_improved(i, load_state(state), temperature, history)

    def on_report(self, i, *figures):
        self.cv.member_report(i, *figures)

    def on_validation(self, i, entry, learning_rate, improved):
        self.cv.member_validation(i, entry, learning_rate, improved)

    def on_finished(self, i, state, temperature, history, stopped, phase_seconds):
        self.cv.member_finished(i, None if state is None else load_state(state), temperature, history, stopped)
        PHASES.add(phase_seconds)
        self.running.discard(i)

    def on_failed(self, i, error):
        self.running.discard(i)
        self.fail(error)

    def fail(self, error):
        if self.error is None:
            self.error = error
        self.stopping.set()

    def notice_dead_workers(self):
        dead = [p for p in self.processes if not p.is_alive() and p.exitcode != 0]
        if dead and self.running:
            training = ", ".join(str(i + 1) for i in sorted(self.running))
            self.fail(EnvironmentProblem(f"a worker process ended unexpectedly (exit code {dead[0].exitcode}) while "
                                         f"network(s) {training} trained; the others stopped, and the model file "
                                         f"keeps every network's best state so far (--resume goes on)"))
            self.running.clear()


def worker_main(jobs, events, stopping, threads, debug, parent):
    """A worker process: trains the networks it is handed, sending what happens to `events`.
    Signals are the main process's to handle: Ctrl-C reaches the whole process group."""
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)
    threading.Thread(target=end_with, args=(parent,), daemon=True).start()
    with cpu_settings():
        torch.set_num_threads(threads)
        train_jobs(jobs, events, stopping, debug)


def train_jobs(jobs, events, stopping, debug):
    """Trains each network handed out on `jobs` until the main process sends None."""
    relay = Relay(events)
    for job, state, temperature, device in iter(jobs.get, None):
        setup_worker_logging(events, f"network {job.index + 1} of {job.folds}", debug)
        try:
            member = build_network(job.arch)
            member.load_state_dict(load_state(state))
            member.temperature = temperature
            PHASES.reset()
            train_fold(job, member.to(device), torch.device(device), relay, RelayedStop(stopping))
        except Exception as error:  # sent to the main process, which stops the others and reports it
            log.debug("failed", exc_info=True)
            events.put(("failed", job.index, error if isinstance(error, UserError) else
                        RuntimeError(f"network {job.index + 1}: {type(error).__name__}: {error}")))


def end_with(parent):
    """Ends this worker once its main process is gone, whatever it is doing: nobody reads
    what it would send, and a job the main process was writing when it died leaves a read
    of the queue that never returns."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


class Relay:
    """crossval.CrossValidation's member_* calls, sent to the main process."""

    def __init__(self, events):
        self.events = events

    def member_improved(self, i, state, temperature, history):
        self.events.put(("improved", i, state_bytes(state), temperature, history))

    def member_report(self, i, *figures):
        self.events.put(("report", i, *figures))

    def member_validation(self, i, entry, learning_rate, improved):
        self.events.put(("validation", i, entry, learning_rate, improved))

    def member_finished(self, i, state, temperature, history, stopped):
        self.events.put(("finished", i, None if state is None else state_bytes(state), temperature, history,
                         stopped, dict(PHASES.seconds)))


class RelayedStop:
    """A worker's stop request: the main process's."""

    def __init__(self, stopping):
        self.stopping = stopping
        self.reason = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def check(self):
        if self.reason is None and self.stopping.is_set():
            self.reason = "the main process asked"
        return self.reason


def setup_worker_logging(events, member, debug):
    """Log records go to the main process, each line prefixed by the network it is about."""
    setup_logging(debug)
    log.handlers[:] = [logging.handlers.QueueHandler(events)]
    log.filters.clear()  # the previous network's

    def prefix(record):
        message = record.getMessage()
        record.msg, record.args = (message if message.startswith("network ") else f"{member}: {message}"), None
        return True

    log.addFilter(prefix)


def state_bytes(state):
    """A state dict as bytes: a copy the receiver owns, whatever the sender does next."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state.items()}, buffer)
    return buffer.getvalue()


def load_state(data):
    return torch.load(io.BytesIO(data), weights_only=True)
