"""The model, its samples and its checkpoint file, shared by train.py, validate.py and backtest.py.

A small LSTM reads the last `seq_len` days of a symbol's features and gives the logit that the
next day's close is above today's. A checkpoint is one ``torch.save`` file holding everything a
validator needs to rebuild the model (its configuration, the symbols and window it learned from,
the feature scaling) and everything a trainer needs to go on exactly where it stopped (the
optimizer, the epoch and batch reached, the shuffle order of the epoch in progress, the random
number generators).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import nn

import bars

FORMAT = "caelum-direction-lstm/1"


class CheckpointError(ValueError):
    """A file that is not a checkpoint of this model: the job says which file and why."""


class DirectionLSTM(nn.Module):
    def __init__(self, features: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, num_layers=layers, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(self.dropout(out[:, -1])).squeeze(-1)


def build_model(config: dict[str, Any]) -> DirectionLSTM:
    return DirectionLSTM(len(bars.FEATURES), config["hidden"], config["layers"], config["dropout"])


class Samples:
    """Every (symbol, day) whose next day lies in a window: inputs, labels, and the day's returns for trading."""

    def __init__(self, symbols: list[str], first: date, last: date, seq_len: int, mean: Optional[torch.Tensor] = None, std: Optional[torch.Tensor] = None) -> None:
        targets = bars.index_range(first, last)
        xs, ys, refs = [], [], []
        for symbol in symbols:
            feats = torch.tensor(bars.features(bars.daily_bars(symbol)), dtype=torch.float32)
            # The sample of day t reads days t-seq_len+1..t and is labelled by day t+1.
            for target in targets:
                t = target - 1
                if t - seq_len + 1 < 1:
                    continue
                xs.append(feats[t - seq_len + 1 : t + 1])
                ys.append(1.0 if feats[target, 0] > 0 else 0.0)
                refs.append((symbol, target))
        if not xs:
            raise ValueError(f"no samples of {', '.join(symbols)} with a next day in {first}..{last}")
        self.x = torch.stack(xs)
        self.y = torch.tensor(ys)
        self.refs = refs
        # Scaling comes from the training samples and travels in the checkpoint.
        self.mean = self.x.reshape(-1, self.x.shape[-1]).mean(0) if mean is None else mean
        self.std = self.x.reshape(-1, self.x.shape[-1]).std(0).clamp_min(1e-8) if std is None else std
        self.x = (self.x - self.mean) / self.std

    def __len__(self) -> int:
        return len(self.y)


# torch 1.13 (Debian 12's) loads a file as data only (weights_only) when it holds tensors, ints,
# strings and containers, but no floats; so every plain value travels as one JSON string, and the
# file loads as data on any torch.
_PLAIN = ("config", "epoch", "batch", "loss_sum", "metrics")


def _encode(state: dict[str, Any]) -> dict[str, Any]:
    data, optimizer = state["data"], state["optimizer"]
    meta = {k: state[k] for k in _PLAIN}
    meta["data"] = {k: data[k] for k in ("symbols", "from", "to")}
    meta["param_groups"] = optimizer["param_groups"]
    return {
        "format": FORMAT,
        "meta": json.dumps(meta),
        "model": state["model"],
        "optimizer_state": optimizer["state"],
        "order": state["order"],
        "mean": data["mean"],
        "std": data["std"],
        "rng": state["rng"],
    }


def _decode(raw: dict[str, Any]) -> dict[str, Any]:
    meta = json.loads(raw["meta"])
    return {
        **{k: meta[k] for k in _PLAIN},
        "data": {**meta["data"], "mean": raw["mean"], "std": raw["std"]},
        "model": raw["model"],
        "optimizer": {"state": raw["optimizer_state"], "param_groups": meta["param_groups"]},
        "order": raw["order"],
        "rng": raw["rng"],
    }


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Write `state` whole or not at all: to a temporary name, synced, then renamed."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        torch.save(_encode(state), f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint as data only: tensors and plain values, never objects that run code when unpickled."""
    try:
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except TypeError:  # a torch before 1.13 has no weights_only
            raw = torch.load(path, map_location="cpu")
    except Exception as err:  # torch raises several kinds (pickle, zip, runtime) for a file it cannot read
        raise CheckpointError(f"{path} is not a checkpoint torch can read as data: {str(err).splitlines()[-1][-200:]}") from err
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint (its format is {found!r})")
    return _decode(raw)


def model_from(state: dict[str, Any]) -> DirectionLSTM:
    model = build_model(state["config"])
    model.load_state_dict(state["model"])
    model.eval()
    return model


@torch.no_grad()
def predict(model: nn.Module, samples: Samples, batch_size: int = 4096) -> torch.Tensor:
    """The probability, for each sample, that the next day closes up."""
    model.eval()
    return torch.cat([torch.sigmoid(model(samples.x[i : i + batch_size])) for i in range(0, len(samples), batch_size)])


def held_out_window(state: dict[str, Any], days: int = 252) -> tuple[date, date]:
    """The year of business days after the checkpoint's training window: validation scores on it."""
    return bars.days_after(date.fromisoformat(state["data"]["to"]), days)


def run_scoring(script: str, main: Callable[[list[str]], int]) -> None:
    """Run validate.py's or backtest.py's main: no gradients, and a bad input said in one line, exit 2."""
    torch.set_grad_enabled(False)
    try:
        code = main(sys.argv[1:])
    except ValueError as err:  # a checkpoint it cannot read, a window without bars
        print(f"{script}: {err}", file=sys.stderr)
        code = 2
    sys.exit(code)
