"""caelum_job: the Python side of the caelum-scheduler job protocol (standard library only).

A job is a program the worker starts with its environment set (``CAELUM_JOB_ID``,
``CAELUM_OUTPUT_DIR``, ``CAELUM_PAYLOAD``, ``CUDA_VISIBLE_DEVICES`` …) that reports back on
standard output, one JSON event a line. A trainer in a few lines::

    import caelum_job as job

    params = job.params()
    with job.graceful_stop() as stop:
        for epoch in range(first_epoch, epochs + 1):
            ...                                   # train, checking stop.requested between batches
            path = job.output_dir() / f"e{epoch}.pt"
            save(path)
            job.checkpoint(path, epoch=epoch, val_accuracy=acc)
            job.progress(epoch, epochs, loss=loss)
    job.result(val_accuracy=acc)

A job that should also run warm (one process taking job after job) puts its work in a handler
and calls ``job.serve(handler)``; see :mod:`caelum_job.serve`.

See the README's "Running a job" and ``examples/pytorch/`` for a complete trainer, validator
and backtester.
"""

from .job import (
    attempt,
    checkpoint_id,
    checkpoint_label,
    checkpoint_path,
    gpus,
    host,
    job_id,
    kind,
    model,
    output_dir,
    params,
    payload,
    resume_epoch,
    resume_from,
)
from .protocol import checkpoint, emit, log, progress, result
from .serve import MALFORMED_EXIT_CODE, serve
from .stop import STOPPED_EXIT_CODE, GracefulStop, graceful_stop, stop_requested

__version__ = "0.1.0"

__all__ = [
    "MALFORMED_EXIT_CODE",
    "STOPPED_EXIT_CODE",
    "GracefulStop",
    "attempt",
    "checkpoint",
    "checkpoint_id",
    "checkpoint_label",
    "checkpoint_path",
    "emit",
    "gpus",
    "graceful_stop",
    "host",
    "job_id",
    "kind",
    "log",
    "model",
    "output_dir",
    "params",
    "payload",
    "progress",
    "result",
    "resume_epoch",
    "resume_from",
    "serve",
    "stop_requested",
]
