"""Scoring a shadow candidate in a process of its own, so the answers never wait for it.

Why a process: the candidate's tree walk is Python and numpy holding the GIL; on a thread it
takes the interpreter from the event loop for up to a switch interval (5 ms) at a time, which
is what a shadow must not cost the answers (issue 14: no more than 10% at p95). A process has
its own interpreter; the serving process only pickles a batch of rows and unpickles the
numbers, a few microseconds a request. The child runs at the lowest CPU priority (Linux
``SCHED_IDLE``: only on a CPU nothing else wants): on a saturated machine the shadow falls
behind (and drops, see :mod:`mlctl.serving.service`) rather than slow the answers down.

Contract: :class:`ShadowScorer` is used from one thread (the service's shadow worker).
:meth:`ShadowScorer.predict` sends ``rows`` and the candidate's predictor (pickled once per
candidate, by its sha256; the child keeps the last few) and blocks, without the GIL, until
the child answers with the :class:`~mlctl.serving.fastpath.Prediction` the predictor gives
in the serving process (the same object, so the same bits). A failure in the child comes back
as :class:`ShadowError`; a child that died or cannot start raises :class:`ShadowError` too,
and the next call starts a new one. :meth:`ShadowScorer.close` stops the child (and kills it
if it does not stop).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import subprocess
import sys
from collections import OrderedDict
from multiprocessing.connection import Connection
from typing import Any

from mlctl.serving.fastpath import Prediction, Predictor

__all__ = ["ShadowError", "ShadowScorer"]

#: Predictors the child keeps (a rollout changes its candidate rarely).
KEEP = 2


class ShadowError(Exception):
    """The shadow child could not score (its message says why)."""


class ShadowScorer:
    """A child process that scores rows with shadow candidates (see the module contract)."""

    def __init__(self) -> None:
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

    def predict(self, key: str, predictor: Predictor, rows: list[list[Any]]) -> Prediction:
        """``predictor.predict(rows)``, computed in the child; ``key`` names the predictor."""
        try:
            if self._process is None or self._process.poll() is not None:
                self.close()
                self._start()
            if key not in self._sent:
                self._conn.send_bytes(pickle.dumps(("model", key, predictor), protocol=5))
                self._sent[key] = None
                while len(self._sent) > KEEP:
                    self._sent.popitem(last=False)
            self._conn.send(("score", key, rows))
            kind, value = self._conn.recv()
        except Exception as error:  # the child died, could not start, or sent garbage
            self.close()
            raise ShadowError(f"the shadow process failed: {type(error).__name__}: {error}") from None
        if kind != "ok":
            raise ShadowError(str(value))
        result: Prediction = value
        return result

    def close(self) -> None:
        """Stop the child (a second later, kill it)."""
        conn, process = self._conn, self._process
        self._conn = self._process = None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send(("stop", None, None))
            conn.close()
        if process is not None:
            try:
                process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5.0)


def _child(conn: Any) -> None:
    """The child's loop, at the lowest CPU priority (``SCHED_IDLE``, else nice 19): keep
    predictors, score rows,
    answer ``("ok", Prediction)`` or ``("error", message)``; ends on ``stop`` or when the
    parent goes away."""
    try:  # Linux: run only on a CPU nothing else wants; elsewhere at least below the answers
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(AttributeError, OSError):
            os.nice(19)
    predictors: OrderedDict[str, Predictor] = OrderedDict()
    while True:
        try:
            kind, key, value = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        if kind == "stop":
            return
        if kind == "model":
            predictors[key] = value
            while len(predictors) > KEEP:
                predictors.popitem(last=False)
            continue
        predictor = predictors.get(key)
        try:
            if predictor is None:
                raise ShadowError(f"no predictor {key} in the shadow process")
            answer: tuple[str, Any] = ("ok", predictor.predict(value))
        except Exception as error:
            answer = ("error", f"{type(error).__name__}: {error}")
        try:
            conn.send(answer)
        except (OSError, pickle.PicklingError):
            return


if __name__ == "__main__":  # python -m mlctl.serving.shadow FD: the child ShadowScorer starts
    _child(Connection(int(sys.argv[1])))
