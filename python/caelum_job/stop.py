"""Stopping cleanly: SIGTERM asks the job to write a checkpoint and exit.

When the worker must stop a job that was not cancelled (the worker shuts down, its host is
drained now, a bigger job preempts it), it sends SIGTERM to the job's process group and waits
its stop grace before SIGKILL; the job goes back to its queue and its next start resumes from
the newest checkpoint it reported (``CAELUM_RESUME_FROM``). Inside :func:`graceful_stop`,
SIGTERM only sets a flag; the training loop checks it where its state is whole (between
batches), writes and reports a checkpoint, and calls :meth:`GracefulStop.exit`::

    with caelum_job.graceful_stop() as stop:
        for epoch in range(start, epochs + 1):
            for batch in batches:
                if stop.requested:
                    path = save_checkpoint(...)
                    caelum_job.checkpoint(path, epoch=epoch - 1, loss=loss)
                    stop.exit()        # exit code 143 (STOPPED_EXIT_CODE)
                train_step(batch)

A stopped job exits with 143 (128 + SIGTERM, as a shell reports a process SIGTERM ended), never
0: a stop is not a finished training, and a SIGTERM that did not come from the worker must not
make a half-trained run look complete (the worker registers a checkpoint only from a run that
exited 0). SIGTERM again changes nothing (the worker signals both the group and each process of
the run, so a job may get it twice), and SIGKILL follows when the grace runs out. SIGINT (Ctrl-C
at a terminal) asks the same way; a second SIGINT stops at once with ``KeyboardInterrupt``.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any, Callable, NoReturn, Optional, Union

__all__ = ["STOPPED_EXIT_CODE", "GracefulStop", "graceful_stop", "stop_requested"]

STOPPED_EXIT_CODE = 143
"""The exit code of a job that stopped on request after writing its checkpoint (128 + SIGTERM)."""

_Handler = Union[Callable[[int, Optional[FrameType]], Any], int, None]

# Signal handlers belong to the process, so which stop is listening is process-wide too: the
# innermost active `graceful_stop()`, for `stop_requested()` to read.
_active: list["GracefulStop"] = []


class GracefulStop:
    """Turns SIGTERM (and SIGINT) into a request the job's loop checks; see the module's text."""

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self._signals = signals
        self._previous: dict[int, _Handler] = {}
        self._signal: Optional[int] = None

    @property
    def requested(self) -> bool:
        """True once a stop signal has arrived."""
        return self._signal is not None

    @property
    def signal(self) -> Optional[int]:
        """The signal that asked for the stop, or None."""
        return self._signal

    def _handle(self, signum: int, _frame: Optional[FrameType]) -> None:
        # Only set the flag: printing here could re-enter a write the main thread is in the
        # middle of, and raising here would cut a checkpoint write in two.
        if signum == signal.SIGINT and self._signal == signal.SIGINT:
            raise KeyboardInterrupt
        if self._signal is None:
            self._signal = signum

    def __enter__(self) -> "GracefulStop":
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("graceful_stop() must be entered in the main thread: only it receives signals")
        for s in self._signals:
            self._previous[s] = signal.signal(s, self._handle)
        _active.append(self)
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()
        if self in _active:
            _active.remove(self)

    def exit(self) -> NoReturn:
        """Leave the program with :data:`STOPPED_EXIT_CODE`, after flushing what it printed."""
        sys.stdout.flush()
        sys.stderr.flush()
        raise SystemExit(STOPPED_EXIT_CODE)


def graceful_stop(signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> GracefulStop:
    """A context manager within which SIGTERM (and SIGINT) only request a stop; see :class:`GracefulStop`."""
    return GracefulStop(signals)


def stop_requested() -> bool:
    """True once a stop signal arrived inside the active :func:`graceful_stop` (False outside one)."""
    return bool(_active) and _active[-1].requested
