"""One handler, cold or warm: ``serve(handler)`` runs a job's work however the worker starts it.

A cold command (the default) starts the program once per job: ``serve`` calls the handler once
with the job's payload and the program ends. A warm command (``runner: {mode: 'warm'}``, see
"Warm runners" in the README) starts it once per slot with ``CAELUM_RUNNER=warm`` and hands it
job after job on standard input, one JSON line each; ``serve`` sets the job's variables, tags
every event with the job's id, calls the handler and answers ``done``::

    import caelum_job as job

    import numpy as np                      # paid once per process when warm

    def backtest(payload):
        for i, symbol in enumerate(payload["symbols"]):
            ...
            job.progress(percent=100 * (i + 1) / len(payload["symbols"]))
        job.result(sharpe_ratio=sharpe)

    job.serve(backtest)
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from contextlib import contextmanager
from typing import Any, BinaryIO, Callable, Iterator, Mapping, NoReturn, Optional

from . import protocol
from .job import payload as env_payload

__all__ = ["serve", "MALFORMED_EXIT_CODE"]

MALFORMED_EXIT_CODE = 2
"""A warm runner's exit code after a line on standard input that is not a job: the pipe is broken."""

Handler = Callable[[dict[str, Any]], Any]


def serve(handler: Handler) -> None:
    """Run ``handler(payload)`` for the job, or for each job of a warm runner; see the module's text.

    Cold: the handler runs once; an exception prints its traceback and exits with code 1, a
    return lets the program end (exit code 0). Warm: an exception prints its traceback, fails
    that job only (``done`` with ``ok: false`` and ``"<ExcType>: <message>"``) and the next job
    comes; end of standard input returns. ``SystemExit`` (``sys.exit``, ``GracefulStop.exit``)
    ends the process in both modes, as a cold program's exit would end its job, except that
    ``sys.exit(0)`` in a warm job completes that job and the runner goes on.
    """
    if os.environ.get("CAELUM_RUNNER") != "warm":
        _serve_cold(handler)
    else:
        _serve_warm(handler)


def _serve_cold(handler: Handler) -> None:
    try:
        handler(env_payload())
    except Exception:
        traceback.print_exc()
        sys.stderr.flush()
        raise SystemExit(1) from None


def _serve_warm(handler: Handler) -> None:
    jobs = _job_channel()
    while True:
        raw = jobs.readline()
        if not raw:
            return
        if not raw.strip():
            continue
        job_id, payload, env = _parse(raw)
        ok, error = _run(handler, job_id, payload, env)
        # Written to sys.stdout like the handler's prints, and flushed: all of them come first.
        done: dict[str, Any] = {"event": "done", "job": job_id, "ok": ok}
        if not ok:
            done["error"] = error
        protocol._write(done)


def _job_channel() -> BinaryIO:
    """The job lines, read from standard input moved to a descriptor of its own.

    Standard input becomes /dev/null, as a cold job's is: a handler, or a program it starts,
    that reads standard input would otherwise swallow the next job's line.
    """
    channel = os.dup(0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return os.fdopen(channel, "rb")


def _parse(raw: bytes) -> tuple[str, dict[str, Any], dict[str, str]]:
    """The job on one line, or exit with MALFORMED_EXIT_CODE: the worker sends only well-formed lines."""
    try:
        value = json.loads(raw)
    except ValueError as err:
        _malformed(f"not JSON ({err})", raw)
    if not isinstance(value, dict):
        _malformed(f"a JSON {type(value).__name__}, not an object", raw)
    job_id, payload, env = value.get("job"), value.get("payload"), value.get("env", {})
    if not isinstance(job_id, str) or not job_id:
        _malformed("no job id (\"job\" must be a non-empty string)", raw)
    if not isinstance(payload, dict):
        _malformed("\"payload\" must be an object", raw)
    if not isinstance(env, dict) or not all(isinstance(k, str) and k and "=" not in k and isinstance(v, str) for k, v in env.items()):
        _malformed("\"env\" must map variable names to strings", raw)
    return job_id, payload, env


def _malformed(problem: str, raw: bytes) -> NoReturn:
    shown = raw[:200].decode("utf-8", "replace").rstrip("\n")
    print(f"caelum_job.serve: a line on standard input is not a job: {problem}: {shown!r}", file=sys.stderr, flush=True)
    raise SystemExit(MALFORMED_EXIT_CODE)


def _run(handler: Handler, job_id: str, payload: dict[str, Any], env: Mapping[str, str]) -> tuple[bool, Optional[str]]:
    """Run one job; (True, None) when it completed, (False, "<ExcType>: <message>") when it failed."""
    try:
        with _job_env(env), _tagged(job_id):
            try:
                handler(payload)
            except SystemExit as stop:
                if stop.code not in (None, 0):
                    raise
        return True, None
    except Exception as err:
        traceback.print_exc()
        sys.stderr.flush()
        message = str(err)
        return False, f"{type(err).__name__}: {message}" if message else type(err).__name__


@contextmanager
def _job_env(env: Mapping[str, str]) -> Iterator[None]:
    """The job's variables set for its duration, then the previous values (or their absence) back."""
    previous = {name: os.environ.get(name) for name in env}
    try:
        os.environ.update(env)
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _tagged(job_id: str) -> Iterator[None]:
    protocol._job = job_id
    try:
        yield
    finally:
        protocol._job = None
