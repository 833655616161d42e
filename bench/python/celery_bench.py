#!/usr/bin/env python3
"""The Celery row of the warm-runner benchmark (bench/warm.ts): the same backtest as a Celery task.

A Celery app with its broker and result backend on the benchmark's Redis, in a database of their
own (``--db``, refused unless it holds nothing but this script's leftovers, emptied of them
after), and a queue named for this run; a prefork worker of ``--concurrency`` processes started
as a child (``python -m celery worker --pool=prefork``); then, as for our worker's rows:

1. warm-up: ``2 x concurrency`` tasks, not counted;
2. latency: ``--latency-jobs`` tasks one after another, each sent once the previous is done:
   add -> start is the task's ``startedAtMs`` minus the time just before ``apply_async``;
3. throughput: ``--jobs`` tasks sent at once; jobs/s = jobs / (last result stored, the backend's
   ``date_done``, minus the first send).

Prints one JSON object on standard output; ``{"skipped": …}`` when Celery is not installed.
Run with the interpreter that has Celery and numpy (Debian: ``apt-get install python3-celery
python3-numpy``, then ``/usr/bin/python3``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SKIPPED = "skipped: Celery is not installed (apt-get install python3-celery python3-numpy)"

# The worker child imports this module to find the app and its task: what both sides must agree
# on comes through these variables, set by main() before the worker starts.
BROKER_ENV, QUEUE_ENV = "CAELUM_BENCH_CELERY_BROKER", "CAELUM_BENCH_CELERY_QUEUE"
# Celery's own keys in a Redis database (kombu's bindings and unacked sets, the results, our queue).
LEFTOVERS = ("celery-task-meta-*", "_kombu.binding.*", "unacked*", "*.reply.celery.pidbox", "bench_warm_*")

try:
    from celery import Celery, __version__ as CELERY_VERSION
    from celery.exceptions import TimeoutError as CeleryTimeout
except ImportError:
    Celery = None  # type: ignore[assignment,misc]


def make_app(url: str, queue: str) -> tuple[Any, Any]:
    """The app and its task; the task runs bench/python/backtest.py's backtest()."""
    sys.path.insert(0, str(HERE))
    import backtest

    app = Celery("caelum_bench", broker=url, backend=url)
    app.conf.update(task_default_queue=queue, result_expires=3600, worker_hijack_root_logger=False)

    @app.task(name="bench.backtest")
    def backtest_task(symbols: list[str], bars: int) -> dict[str, float]:
        return backtest.backtest(symbols, bars)

    return app, backtest_task


# The worker child (`celery -A celery_bench`) imports this module for its app; numpy is imported
# here, in the worker's parent, before it forks its pool.
if Celery is not None and os.environ.get(BROKER_ENV):
    app, _ = make_app(os.environ[BROKER_ENV], os.environ[QUEUE_ENV])


def ms(moment: Any) -> float:
    """A Celery date_done (a naive UTC datetime) as milliseconds since the epoch."""
    return moment.replace(tzinfo=timezone.utc).timestamp() * 1000


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, -(-len(ordered) * p // 100) - 1))] if ordered else float("nan")


def clean(redis: Any) -> int:
    removed = 0
    for pattern in LEFTOVERS:
        keys = list(redis.scan_iter(match=pattern, count=1000))
        if keys:
            removed += redis.delete(*keys)
    return removed


def start_worker(queue: str, concurrency: int, log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_bench", "worker", "--pool=prefork", f"--concurrency={concurrency}",
         "-Q", queue, "-n", f"{queue}@%h", "--loglevel=WARNING", "--without-gossip", "--without-mingle"],
        cwd=HERE,
        env=os.environ,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own group, so the prefork children end with it
    )


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)  # Celery's warm shutdown
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(worker.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    worker.wait()


def wait_ready(app: Any, worker: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the Celery worker exited with code {worker.returncode} before it was ready")
        if app.control.ping(timeout=0.5):
            return
    raise RuntimeError("the Celery worker did not answer a ping in time")


SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "SPY", "QQQ", "IWM"]


def symbol(i: int) -> list[str]:
    return [SYMBOLS[i % len(SYMBOLS)]]


def run(args: argparse.Namespace, task: Any, deadline: float) -> dict[str, Any]:
    timeout = lambda: max(1.0, deadline - time.monotonic())  # noqa: E731
    warmup = [task.apply_async((symbol(i), args.bars)) for i in range(2 * args.concurrency)]
    for r in warmup:
        r.get(timeout=timeout())
    latencies = []
    for i in range(args.latency_jobs):
        added = time.time() * 1000
        result = task.apply_async((symbol(i), args.bars)).get(timeout=timeout())
        latencies.append(result["startedAtMs"] - added)
    sent = []
    first_add = time.time() * 1000
    for i in range(args.jobs):
        sent.append((time.time() * 1000, task.apply_async((symbol(i), args.bars))))
    # Out of time, the row reports the tasks done by then, as ours does.
    for _, r in sent:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            r.get(timeout=left, propagate=False)
        except CeleryTimeout:
            break
    results, finished, load_latencies, compute = [], [], [], []
    for added, r in sent:
        if not r.successful():
            continue
        value = r.get()
        results.append(value)
        finished.append(ms(r.date_done))
        load_latencies.append(value["startedAtMs"] - added)
        compute.append(value["computeMs"])
    failed = [r for _, r in sent if r.failed()]
    elapsed = max(finished) - first_add
    return {
        "jobs": len(results),
        "failed": len(failed),
        **({"firstFailure": repr(failed[0].result)} if failed else {}),
        "jobsPerSec": len(results) / elapsed * 1000,
        "elapsedMs": elapsed,
        "latencyMs": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95), "p99": percentile(latencies, 99), "n": len(latencies)},
        "loadLatencyP50Ms": percentile(load_latencies, 50),
        "computeMsP50": percentile(compute, 50),
        "cpuMsP50": percentile([v["cpuMs"] for v in results], 50),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument("--db", type=int, default=14)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--latency-jobs", type=int, default=50)
    parser.add_argument("--bars", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=120, help="give up after this long")
    args = parser.parse_args()
    if Celery is None:
        print(json.dumps({"skipped": SKIPPED}))
        return
    import redis as redis_client

    url = f"{args.redis_url.rstrip('/')}/{args.db}"
    deadline = time.monotonic() + args.seconds
    queue = f"bench_warm_{secrets.token_hex(4)}"
    redis = redis_client.Redis.from_url(url)
    clean(redis)
    if redis.dbsize():
        raise SystemExit(f"Redis database {args.db} holds {redis.dbsize()} keys that are not Celery's: give the benchmark an empty one (--db; BENCH_CELERY_REDIS_DB for bench/warm.ts)")
    os.environ[BROKER_ENV], os.environ[QUEUE_ENV] = url, queue
    app, task = make_app(url, queue)
    log_path = Path(os.environ.get("TMPDIR", "/tmp"), f"{queue}.log")
    with open(log_path, "wb") as log:
        worker = start_worker(queue, args.concurrency, log)
        try:
            wait_ready(app, worker, time.monotonic() + 60)
            out = run(args, task, deadline)
        except BaseException as err:
            tail = log_path.read_bytes()[-1500:].decode("utf-8", "replace")
            raise SystemExit(f"{type(err).__name__}: {err}; worker log: {tail}") from None
        finally:
            stop_worker(worker)
            app.close()
            clean(redis)
            redis.close()
            log_path.unlink(missing_ok=True)
    out.update({"concurrency": args.concurrency, "bars": args.bars, "celery": CELERY_VERSION, "python": sys.version.split()[0]})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
