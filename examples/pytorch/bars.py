"""Synthetic daily bars, the same on every host: a seeded generator per symbol (standard library only).

Stands in for the market data a real trainer reads. Each symbol's daily return is a slowly
drifting trend (an AR(1) process nobody sees) plus much larger day-to-day noise, so tomorrow's
direction can be guessed a little better than a coin from the recent past, as with real bars,
and a model that learns the trend trades better than one that does not. The bars cover business
days from DATA_START to DATA_END; the generator is seeded from the symbol's name only, so every
host, and every run, sees the same bars.
"""

from __future__ import annotations

import math
import random
import zlib
from datetime import date, timedelta
from functools import lru_cache
from typing import NamedTuple

DATA_START = date(2012, 1, 2)
DATA_END = date(2026, 12, 31)

# The hidden trend: mu[t] = TREND_MEMORY * mu[t-1] + N(0, TREND_STEP); a return is mu[t] + N(0, NOISE).
TREND_MEMORY = 0.97
TREND_STEP = 0.0015
NOISE = 0.01


class Bar(NamedTuple):
    day: date
    open: float
    high: float
    low: float
    close: float
    volume: float


def business_days(start: date = DATA_START, end: date = DATA_END) -> list[date]:
    days = []
    d = start
    while d <= end:
        if d.weekday() < 5:
            days.append(d)
        d += timedelta(days=1)
    return days


@lru_cache(maxsize=256)
def daily_bars(symbol: str) -> tuple[Bar, ...]:
    """Every business day's bar of `symbol`, from DATA_START to DATA_END."""
    rng = random.Random(zlib.crc32(symbol.encode()))
    close = 20 + 180 * rng.random()
    base_volume = 1e6 * (1 + 9 * rng.random())
    trend = 0.0
    bars = []
    for day in business_days():
        trend = TREND_MEMORY * trend + rng.gauss(0, TREND_STEP)
        ret = trend + rng.gauss(0, NOISE)
        open_ = close * math.exp(rng.gauss(0, 0.002))
        close = close * math.exp(ret)
        high = max(open_, close) * (1 + abs(rng.gauss(0, 0.004)))
        low = min(open_, close) * (1 - abs(rng.gauss(0, 0.004)))
        volume = base_volume * math.exp(abs(ret) / NOISE * 0.3 + rng.gauss(0, 0.2))
        bars.append(Bar(day, open_, high, low, close, volume))
    return tuple(bars)


FEATURES = ("log_return", "range", "log_volume_change")


def features(bars: tuple[Bar, ...]) -> list[tuple[float, float, float]]:
    """Per day: the close-to-close log return, the day's range over its close, the log change of volume."""
    rows = [(0.0, (bars[0].high - bars[0].low) / bars[0].close, 0.0)]
    for prev, bar in zip(bars, bars[1:]):
        rows.append((math.log(bar.close / prev.close), (bar.high - bar.low) / bar.close, math.log(bar.volume / prev.volume)))
    return rows


def parse_day(text: str) -> date:
    """A window bound as payloads give it: an ISO date, or a date-time whose date part counts."""
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO date such as 2024-01-31") from None


def index_range(first: date, last: date) -> range:
    """The indexes of the business days from `first` to `last` (inclusive) in daily_bars()."""
    if first > last:
        raise ValueError(f"the window {first}..{last} ends before it starts")
    if last < DATA_START or first > DATA_END:
        raise ValueError(f"the window {first}..{last} has no bars: the synthetic bars cover {DATA_START}..{DATA_END}")
    days = business_days()
    lo = next(i for i, d in enumerate(days) if d >= first)
    hi = max(i for i, d in enumerate(days) if d <= last)
    return range(lo, hi + 1)


def days_after(last: date, count: int) -> tuple[date, date]:
    """The `count` business days after `last`, as a window (the held-out days after a training window)."""
    days = [d for d in business_days() if d > last][:count]
    if not days:
        raise ValueError(f"no bars after {last}: the synthetic bars end on {DATA_END}")
    return days[0], days[-1]
