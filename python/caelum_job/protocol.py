"""The child side of the job protocol: one JSON object a line on standard output.

The worker reads every line a job prints; a line holding a JSON object whose ``event`` is
``progress``, ``checkpoint`` or ``result`` is an event, every other line is log text. Each event
is written and flushed at once (standard output to a pipe is block-buffered), so the worker sees
progress while the job runs, and anything the program printed before it comes first.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
from typing import Any, Mapping, Optional

__all__ = ["emit", "progress", "checkpoint", "result", "log"]

# Events may come from several threads (a data loader reporting, the training loop); a line
# written by two of them at once would be neither event nor log.
_lock = threading.Lock()

# The warm job being served (serve.py), or None in a cold process. Every event then names it, so
# the worker can drop a late line of an earlier job. Process-wide, like the os.environ that
# serve() sets per job, rather than a context variable: events from threads the handler starts
# must carry it too.
_job: Optional[str] = None


def _metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Metrics are finite numbers: JSON has no NaN, and the worker would read such a line as log text."""
    out: dict[str, float] = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            # numpy and torch scalars have .item(); anything else is not a number.
            item = getattr(value, "item", None)
            value = item() if callable(item) else value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"metric {name!r} is {type(value).__name__}, not a number")
        if not math.isfinite(value):
            raise ValueError(f"metric {name!r} is {value}: the protocol carries finite numbers only")
        out[name] = value
    return out


def emit(event: str, fields: Optional[Mapping[str, Any]] = None) -> None:
    """Write one event line (``{"event": event, **fields}``) and flush it.

    Prefer :func:`progress`, :func:`checkpoint` and :func:`result`; this is for fields they do
    not cover. Raises ``ValueError`` for a field JSON cannot carry (NaN, infinity).
    """
    if event not in ("progress", "checkpoint", "result"):
        raise ValueError(f"unknown event {event!r}: the worker reads progress, checkpoint and result")
    record = {"event": event, **(fields or {})}
    job = _job
    if job is not None:
        if "job" in record:
            raise ValueError("field 'job' is taken: a warm runner tags every event with its job's id")
        record["job"] = job
    _write(record)


def _write(record: Mapping[str, Any]) -> None:
    """One JSON line on standard output, flushed, never interleaved with another thread's."""
    line = json.dumps(record, allow_nan=False, separators=(",", ":"))
    with _lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def progress(
    epoch: Optional[int] = None,
    epochs: Optional[int] = None,
    *,
    percent: Optional[float] = None,
    eta_seconds: Optional[float] = None,
    **metrics: Any,
) -> None:
    """Report how far the job is: ``progress(3, 10, loss=0.41)``, or ``progress(percent=50)``.

    ``percent`` defaults to ``epoch / epochs``; the worker estimates when the job ends from how
    fast it grows, and shows it in the API and Bull Board.
    """
    fields: dict[str, Any] = {}
    if epoch is not None:
        fields["epoch"] = epoch
    if epochs is not None:
        if epochs <= 0:
            raise ValueError(f"epochs is {epochs}: it must be positive")
        fields["epochs"] = epochs
    if percent is None and epoch is not None and epochs:
        percent = round(100 * epoch / epochs, 1)
    if percent is not None:
        fields["percent"] = percent
    if eta_seconds is not None:
        fields["etaSeconds"] = eta_seconds
    if metrics:
        fields["metrics"] = _metrics(metrics)
    emit("progress", fields)


def checkpoint(path: "os.PathLike[str] | str", *, epoch: Optional[int] = None, **metrics: Any) -> str:
    """Report a checkpoint file the job wrote, with its metrics; returns the absolute path sent.

    ``epoch`` (the epochs the file holds, complete) lets the worker record where a rerun of the
    job resumes (it hands that back in ``CAELUM_RESUME_EPOCH``). The file must exist: the worker
    hashes it and refuses one outside the job's output folder or the model's checkpoint folder,
    or one reached through a symbolic link. Write it completely (to a temporary name, then
    ``os.replace``) before reporting it.
    """
    absolute = os.path.abspath(os.fspath(path))
    if not os.path.isfile(absolute):
        raise FileNotFoundError(f"checkpoint {absolute} is not a file: write it before reporting it")
    fields: dict[str, Any] = {"path": absolute}
    if epoch is not None:
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch is {epoch!r}: it must be a whole number of epochs, 0 or more")
        fields["epoch"] = epoch
    fields["metrics"] = _metrics(metrics)
    emit("checkpoint", fields)
    return absolute


def result(*, extra: Optional[Mapping[str, Any]] = None, **metrics: Any) -> None:
    """Report the job's outcome: ``result(sharpe_ratio=1.4, total_return=0.12)``.

    The metrics are what the worker records and, for a validation, what the checkpoint's
    thresholds are checked against. ``extra`` adds fields beside ``metrics`` (a backtest's
    per-symbol figures go in ``extra={"symbols": [...]}``). The last result a job reports counts.
    """
    fields: dict[str, Any] = {"metrics": _metrics(metrics)}
    for key, value in (extra or {}).items():
        if key in ("event", "metrics"):
            raise ValueError(f"extra field {key!r} would replace the event's own")
        fields[key] = value
    emit("result", fields)


def log(*parts: object, sep: str = " ") -> None:
    """Write a line of log text (goes to the job's log, like ``print``).

    A line that would read as an event (it starts with ``{``) is prefixed with ``# ``, so that
    log text never turns into an event.
    """
    text = sep.join(str(p) for p in parts)
    lines = [("# " + ln) if ln.lstrip().startswith("{") else ln for ln in text.split("\n")]
    with _lock:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
