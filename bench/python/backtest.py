#!/usr/bin/env python3
"""The warm-runner benchmark's backtest (bench/warm.ts): numpy, about 20 ms of real work a job.

For each symbol of the job: daily log returns from a random walk seeded by the symbol (its drift
and volatility drawn from the same seed), then a grid of moving-average crossovers (fast 5-30
days, slow 50-200) traded long/flat with a cost per switch; reports the best pair's annualised
sharpe ratio, annual return, largest drawdown and switches. ``--bars`` sets the length of the
series: 50,000 bars take about 20 ms of CPU on the benchmark machine (``--calibrate`` measures).

Run by our worker (cold or warm command) through ``caelum_job.serve``; bench/python/celery_bench.py
calls :func:`backtest` from a Celery task. Both report ``startedAtMs`` (wall clock, ms, when the
job's own code began), ``computeMs``, ``cpuMs`` and ``pid`` in the result, the same way, so that the
benchmark measures add -> start and throughput alike for every row.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import zlib
from pathlib import Path
from typing import Any

# The job library of this checkout: nothing to install.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))

import numpy as np  # noqa: E402

import caelum_job as job  # noqa: E402

DEFAULT_BARS = 50_000
FAST = (5, 10, 20, 30)
SLOW = (50, 100, 150, 200)
COST = 0.0005  # per switch between long and flat, in log return


def best_crossover(symbol: str, bars: int) -> dict[str, Any]:
    """The best moving-average crossover on the symbol's synthetic series, by sharpe ratio."""
    rng = np.random.default_rng(zlib.crc32(symbol.encode()))
    drift, vol = rng.normal(0.0003, 0.0002), rng.uniform(0.01, 0.03)
    returns = rng.normal(drift, vol, bars)
    close = 100 * np.exp(np.cumsum(returns))
    sums = np.concatenate(([0.0], np.cumsum(close)))
    best: dict[str, Any] = {}
    for fast in FAST:
        for slow in SLOW:
            fast_ma = (sums[slow:] - sums[slow - fast : -fast]) / fast
            slow_ma = (sums[slow:] - sums[:-slow]) / slow
            # Today's position comes from yesterday's close: no look-ahead.
            long = (fast_ma > slow_ma).astype(np.float64)[:-1]
            switches = np.abs(np.diff(long, prepend=0.0))
            daily = long * returns[slow:] - COST * switches
            equity = np.cumsum(daily)
            sharpe = float(daily.mean() / (daily.std() or 1e-9) * np.sqrt(252))
            if not best or sharpe > best["sharpe_ratio"]:
                drawdown = float(np.max(np.maximum.accumulate(equity) - equity))
                best = {
                    "sharpe_ratio": sharpe,
                    "annual_return": float(np.expm1(equity[-1] * 252 / len(daily))),
                    "max_drawdown": float(-np.expm1(-drawdown)),
                    "switches": int(switches.sum()),
                    "fast": fast,
                    "slow": slow,
                }
    return best


def backtest(symbols: list[str], bars: int) -> dict[str, float]:
    """The job's work and its timing: the metrics of its result."""
    started_at_ms = time.time() * 1000
    wall, cpu = time.perf_counter(), time.process_time()
    results = [best_crossover(s, bars) for s in symbols]
    metrics = {k: float(np.mean([r[k] for r in results])) for k in ("sharpe_ratio", "annual_return", "max_drawdown", "switches")}
    return {
        **metrics,
        "startedAtMs": started_at_ms,
        "computeMs": (time.perf_counter() - wall) * 1000,
        "cpuMs": (time.process_time() - cpu) * 1000,
        "pid": os.getpid(),  # how many processes ran a row's jobs: one per slot when warm
    }


def calibrate(bars: int, runs: int) -> None:
    for symbol in ("AAPL", "MSFT", "SPY"):
        best_crossover(symbol, bars)  # numpy's first call pays for more than the work
        timings = sorted(backtest([symbol], bars)["cpuMs"] for _ in range(runs))
        print(f"{symbol}: {bars} bars, median {timings[runs // 2]:.1f} ms of CPU (min {timings[0]:.1f}, max {timings[-1]:.1f}) over {runs} runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bars", type=int, default=DEFAULT_BARS)
    parser.add_argument("--calibrate", type=int, metavar="RUNS", help="print how long a job takes, then exit")
    args = parser.parse_args()
    if args.calibrate:
        calibrate(args.bars, args.calibrate)
        return
    job.serve(lambda payload: job.result(**backtest(payload.get("symbols") or ["SPY"], args.bars)))


if __name__ == "__main__":
    main()
