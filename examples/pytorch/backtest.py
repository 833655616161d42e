#!/usr/bin/env python3
"""Trade a checkpoint's predictions on daily bars, as a caelum-scheduler backtest job.

For each symbol of the job, every day the model says whether the next close will be higher:
long for the next day when it says so (probability over one half), flat otherwise. Reports per
symbol and overall, in examples/backtester.mjs's shape, the annualised sharpe ratio of the daily
returns, the total return, the largest drawdown, the win rate of the trades (one trade is one
stretch of days long) and their number. The window is the job's ``window``, or else the year
after the checkpoint's held-out validation year, so that neither training nor validation saw it.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

# The job library of this checkout (README, "The PyTorch pipeline"): nothing to install.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))


import bars  # noqa: E402
import caelum_job as job  # noqa: E402
from model import Samples, held_out_window, load_checkpoint, model_from, predict, run_scoring  # noqa: E402


def trade(symbol: str, longs: list[bool], days: list[int]) -> dict[str, Any]:
    """Long for day t (close t-1 to close t) when the prediction made at t-1 said up."""
    closes = [b.close for b in bars.daily_bars(symbol)]
    equity, peak, max_drawdown = 1.0, 1.0, 0.0
    returns: list[float] = []
    trades: list[float] = []
    held = None  # growth of the trade in progress
    for long, t in zip(longs, days):
        r = closes[t] / closes[t - 1] - 1 if long else 0.0
        returns.append(r)
        equity *= 1 + r
        peak = max(peak, equity)
        max_drawdown = max(max_drawdown, 1 - equity / peak)
        if long:
            held = (held or 1.0) * (1 + r)
        elif held is not None:
            trades.append(held - 1)
            held = None
    if held is not None:
        trades.append(held - 1)
    mean = sum(returns) / len(returns)
    sd = math.sqrt(sum((r - mean) ** 2 for r in returns) / len(returns)) or 1e-9
    return {
        "symbol": symbol,
        "sharpe_ratio": round(mean / sd * math.sqrt(252), 4),
        "total_return": round(equity - 1, 4),
        "max_drawdown": round(max_drawdown, 4),
        "win_rate": round(sum(1 for t in trades if t > 0) / len(trades), 4) if trades else 0,
        "trades": len(trades),
    }


def main(argv: list[str]) -> int:
    p = job.payload()
    path = job.checkpoint_path() or (Path(argv[0]) if argv else None)
    if path is None:
        print("backtest.py: no checkpoint: a backtest of this model trades a checkpoint's predictions (give the job a checkpoint)", file=sys.stderr)
        return 2
    if p.get("timeframe", "1d") != "1d":
        print(f"backtest.py: timeframe {p['timeframe']} is not supported: the model trades daily bars (1d)", file=sys.stderr)
        return 2
    state = load_checkpoint(path)
    window = p.get("window")
    if window:
        first, last = bars.parse_day(window["from"]), bars.parse_day(window["to"])
    else:
        first, last = bars.days_after(held_out_window(state)[1], 252)
    symbols = p.get("symbols") or state["data"]["symbols"]
    model = model_from(state)
    results = []
    for i, symbol in enumerate(symbols):
        samples = Samples([symbol], first, last, state["config"]["seq_len"], state["data"]["mean"], state["data"]["std"])
        longs = (predict(model, samples) > 0.5).tolist()
        results.append(trade(symbol, longs, [t for _, t in samples.refs]))
        job.progress(percent=round(100 * (i + 1) / len(symbols), 1))
        job.log(f"backtested {symbol} from {first} to {last}: " + " ".join(f"{k}={v}" for k, v in results[-1].items() if k != "symbol"))

    def avg(key: str) -> float:
        return round(sum(r[key] for r in results) / len(results), 4)

    job.result(
        sharpe_ratio=avg("sharpe_ratio"),
        total_return=avg("total_return"),
        max_drawdown=avg("max_drawdown"),
        win_rate=avg("win_rate"),
        trades=sum(r["trades"] for r in results),
        extra={"symbols": results, "window": {"from": first.isoformat(), "to": last.isoformat()}},
    )
    return 0


if __name__ == "__main__":
    run_scoring("backtest.py", main)
