"""Scoring and logging a shadow candidate in a process of its own, so the answers never wait.

Why a process: the candidate's tree walk is Python and numpy holding the GIL; on a thread it
takes the interpreter from the event loop for up to a switch interval at a time, which is
what a shadow must not cost the answers (issue 14: no more than 10% at p95). Why the child
also writes the shadow's log records: measured on 2 cores, what was left on the serving
process once the walk had moved out (a worker thread unpickling each batch's numbers and
building one record per request, then the log shipper encoding twice the records) was what
showed at p95. So the serving process only hands over the rows: one pickled message per
batch of requests, no answer to wait for, no record to build or encode. The child runs at
the lowest CPU priority (Linux ``SCHED_IDLE``: only on a CPU nothing else wants); on a
saturated machine it falls behind, its pipe fills, and the serving process drops shadow
work (counted, see :mod:`mlctl.serving.service`) rather than slow the answers down.

Contract: :class:`ShadowScorer` is used from one thread (the service's shadow worker).
:meth:`ShadowScorer.send` hands ``jobs`` (request id, arrival time as epoch seconds, rows)
and the candidate (its predictor pickled once per candidate, by its key; the child keeps the
last :data:`KEEP`) to the child and returns as soon as the message is in the pipe. The child
scores each message's rows as one batch (``predictor.predict``: the same bits as in the
serving process), turns them into answers like
:meth:`~mlctl.serving.service.Service.results`, and logs one record per request through its
own :class:`~mlctl.providers.predlog.PredictionLogWriter` on the same store (its objects are
named with the child's pid): ``arm`` and ``route`` ``shadow``, the request's id and arrival
time, the candidate's version, ``status`` 200 with ``predictions`` (``prediction`` and
``probability`` per row) or 500 and none when the candidate failed, and the request's rows'
share of the batch's predict time as ``latency_ms``. A child that died or cannot start makes
:meth:`ShadowScorer.send` raise :class:`ShadowError` (that batch is lost) and the next call
starts a new one. :meth:`ShadowScorer.close` has the child score what it was sent, ship its
log and exit (killed if it has not within ``timeout`` seconds).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import socket
import subprocess
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, cast

from mlctl.ml.compiled import Predictor
from mlctl.providers.predlog import LogStore, PredictionLogWriter

__all__ = ["ShadowCandidate", "ShadowError", "ShadowScorer"]

log = logging.getLogger("mlctl.serving.shadow")

#: Predictors the child keeps (a rollout changes its candidate rarely).
KEEP = 2


class ShadowError(Exception):
    """The shadow child could not be reached (its message says why)."""


@dataclass(frozen=True)
class ShadowCandidate:
    """What the child needs of a candidate: its predictor, classes (for the answers) and the
    names its records carry. ``key`` names it (its sha256)."""

    key: str
    version: int
    predictor: Predictor
    classes: list[Any]
    endpoint: str
    model: str


class ShadowScorer:
    """A child process that scores and logs shadow requests (see the module contract)."""

    def __init__(self, store: LogStore, flush_interval: float = 2.0) -> None:
        pickle.dumps(store)  # fail here, in the serving process, if the store cannot travel
        self._store = store
        self._flush_interval = flush_interval
        self._conn: Any = None
        self._process: Any = None
        self._sent: OrderedDict[str, None] = OrderedDict()

    def _start(self) -> None:
        # A plain child interpreter (not multiprocessing's spawn, which imports the parent's
        # __main__ again), talking over a socket pair with multiprocessing's framing.
        ours, theirs = socket.socketpair()
        with ours, theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "mlctl.serving.shadow", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
            self._conn = Connection(ours.detach())
        self._sent = OrderedDict()
        self._conn.send_bytes(pickle.dumps(("log", self._store, self._flush_interval), protocol=5))

    def send(self, candidate: ShadowCandidate, jobs: list[tuple[Any, float, list[list[Any]]]]) -> None:
        """Hand ``jobs`` to the child to score with ``candidate`` and log; blocks (without the
        GIL) only while the pipe is full."""
        try:
            if self._process is None or self._process.poll() is not None:
                self.close(timeout=1.0)
                self._start()
            if candidate.key not in self._sent:
                self._conn.send_bytes(pickle.dumps(("model", candidate.key, candidate), protocol=5))
                self._sent[candidate.key] = None
                while len(self._sent) > KEEP:
                    self._sent.popitem(last=False)
            self._conn.send_bytes(pickle.dumps(("score", candidate.key, jobs), protocol=5))
        except Exception as error:  # the child died or could not start
            self.close(timeout=1.0)
            raise ShadowError(f"the shadow process failed: {type(error).__name__}: {error}") from None

    def close(self, timeout: float = 60.0) -> None:
        """Have the child finish what it was sent and ship its log; kill it after ``timeout``."""
        conn, process = self._conn, self._process
        self._conn = self._process = None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send_bytes(pickle.dumps(("stop", None, None)))
            conn.close()
        if process is not None:
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5.0)


def _score(
    candidate: ShadowCandidate, jobs: list[tuple[Any, float, list[list[Any]]]], writer: PredictionLogWriter
) -> None:
    """Score ``jobs`` as one batch and log one ``arm: shadow`` record per request."""
    from mlctl.serving.service import Service  # the same answers as the serving process

    rows = [row for _, _, mine in jobs for row in mine]
    started = time.perf_counter()
    status, results = 200, []
    try:
        # Service.results reads only ``classes`` of the loaded model
        results = Service.results(cast(Any, candidate), candidate.predictor.predict(rows))
    except Exception as error:
        log.warning("shadow v%s: %s: %s", candidate.version, type(error).__name__, error)
        status = 500
    seconds = time.perf_counter() - started
    offset = 0
    for request_id, arrived, mine in jobs:
        share = results[offset : offset + len(mine)]
        offset += len(mine)
        writer.log(
            {
                "ts": arrived,
                "request_id": request_id,
                "endpoint": candidate.endpoint,
                "model": candidate.model,
                "version": candidate.version,
                "route": "shadow",
                "arm": "shadow",
                "status": status,
                "latency_ms": round(seconds * 1000.0 * len(mine) / max(len(rows), 1), 4),
                "rows": len(share),
                "predictions": [{"prediction": p, "probability": q} for p, q in share],
            }
        )


def _child(conn: Any) -> None:
    """The child's loop, at the lowest CPU priority (``SCHED_IDLE``, else nice 19): open the
    log (first message), keep candidates, score and log batches; on ``stop`` or when the
    parent goes away, ship the log and end."""
    try:  # Linux: run only on a CPU nothing else wants; elsewhere at least below the answers
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(AttributeError, OSError):
            os.nice(19)
    logging.basicConfig(level=logging.WARNING)
    candidates: OrderedDict[str, ShadowCandidate] = OrderedDict()
    writer: PredictionLogWriter | None = None
    try:
        while True:
            try:
                kind, key, value = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError):
                return
            if kind == "stop":
                return
            if kind == "log":
                writer = PredictionLogWriter(key, flush_interval=value).start()
            elif kind == "model":
                candidates[key] = value
                while len(candidates) > KEEP:
                    candidates.popitem(last=False)
            elif writer is not None and key in candidates:
                _score(candidates[key], value, writer)
    finally:
        if writer is not None:
            writer.close()
            if writer.dropped or writer.errors:
                log.warning(
                    "shadow log: %d records dropped, %d errors (%s)",
                    writer.dropped,
                    writer.errors,
                    writer.last_error,
                )


if __name__ == "__main__":  # python -m mlctl.serving.shadow FD: the child ShadowScorer starts
    _child(Connection(int(sys.argv[1])))
