"""What the worker tells a job through its environment.

Every value is read when asked for, never at import, so a program (or a test) can set the
variables first. An empty variable counts as unset, as it does for the worker.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

__all__ = [
    "payload",
    "params",
    "output_dir",
    "gpus",
    "resume_from",
    "resume_epoch",
    "job_id",
    "attempt",
    "kind",
    "model",
    "host",
    "checkpoint_path",
    "checkpoint_id",
    "checkpoint_label",
]


def _get(name: str) -> Optional[str]:
    value = os.environ.get(name)
    return value if value else None


def _int(name: str) -> Optional[int]:
    value = _get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} is {value!r}, not a whole number") from None


def payload() -> dict[str, Any]:
    """The job's payload (``CAELUM_PAYLOAD``) as a dict; ``{}`` when run by hand.

    It is data to read, never a command: a training job's holds ``model``, ``params``,
    ``datasetWindow`` and ``symbols``; a backtest's ``model``, ``symbols``, ``timeframe``,
    ``window``.
    """
    raw = _get("CAELUM_PAYLOAD")
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ValueError(f"CAELUM_PAYLOAD is not JSON ({err.msg} at character {err.pos})") from None
    if not isinstance(value, dict):
        raise ValueError(f"CAELUM_PAYLOAD is a JSON {type(value).__name__}, not an object")
    return value


def params() -> dict[str, Any]:
    """A training job's ``params`` (name -> string, number or boolean); ``{}`` when none."""
    value = payload().get("params") or {}
    if not isinstance(value, dict):
        raise ValueError(f"CAELUM_PAYLOAD's params is a {type(value).__name__}, not an object")
    return value


def output_dir() -> Path:
    """The folder this start of the job writes in (``CAELUM_OUTPUT_DIR``), created if missing.

    Each start has its own (``…/<job id>/attempt-<n>``), so a rerun never writes over a file an
    earlier start reported. A checkpoint must be written here (or in the model's checkpoint
    folder) for the worker to accept it.
    """
    value = _get("CAELUM_OUTPUT_DIR")
    if value is None:
        raise RuntimeError("CAELUM_OUTPUT_DIR is not set: the worker sets it; set it yourself to run a job by hand")
    folder = Path(value)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def gpus() -> Optional[list[str]]:
    """The GPUs leased to this job, from ``CUDA_VISIBLE_DEVICES`` (indexes or ``GPU-…`` UUIDs).

    ``[]`` means none (a CPU job, or the variable set empty); ``None`` means the variable is not
    set at all, so CUDA would show every GPU (only outside the worker, which always sets it).
    CUDA renumbers the listed GPUs from 0, so the job uses ``cuda:0`` … ``cuda:len-1``.
    """
    raw = os.environ.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return None
    return [g.strip() for g in raw.split(",") if g.strip()]


def resume_from() -> Optional[Path]:
    """The checkpoint to resume from (``CAELUM_RESUME_FROM``), or ``None`` for a fresh start.

    The worker sets it when the job runs again after a crash or a stop: the newest checkpoint
    this job reported whose file still matches the sha256 the worker measured.
    """
    value = _get("CAELUM_RESUME_FROM")
    return Path(value) if value else None


def resume_epoch() -> Optional[int]:
    """The epoch the worker recorded for the checkpoint in ``CAELUM_RESUME_FROM`` (``CAELUM_RESUME_EPOCH``).

    ``None`` when the job is not resuming or the checkpoint was reported without an epoch; the
    file's own record is what a trainer should trust, this is for logging and for checking it.
    """
    return _int("CAELUM_RESUME_EPOCH")


def job_id() -> Optional[str]:
    """The job's id (``<queue>.<uuid>``), the same on every attempt."""
    return _get("CAELUM_JOB_ID")


def attempt() -> Optional[int]:
    """Which start of the job this is, from 1."""
    return _int("CAELUM_ATTEMPT")


def kind() -> Optional[str]:
    """``training``, ``backtest``, ``data-sync`` or ``deploy-test``."""
    return _get("CAELUM_KIND")


def model() -> Optional[str]:
    """The model the job is for (``llm1-tech``), when it is for one."""
    return _get("CAELUM_MODEL")


def host() -> Optional[str]:
    """The host id the job runs on."""
    return _get("CAELUM_HOST")


def checkpoint_path() -> Optional[Path]:
    """For a validation or a backtest: the checkpoint file to load (``CAELUM_CHECKPOINT_PATH``)."""
    value = _get("CAELUM_CHECKPOINT_PATH")
    return Path(value) if value else None


def checkpoint_id() -> Optional[int]:
    """The registry id of that checkpoint."""
    return _int("CAELUM_CHECKPOINT_ID")


def checkpoint_label() -> Optional[str]:
    """Its label, ``<model>-v<major>.<n>.0``."""
    return _get("CAELUM_CHECKPOINT_LABEL")
