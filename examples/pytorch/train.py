#!/usr/bin/env python3
"""Train the next-day direction LSTM on daily bars, as a caelum-scheduler training job.

Writes a ``torch.save`` checkpoint into CAELUM_OUTPUT_DIR after every epoch and reports it
(with its epoch and metrics); resumes from CAELUM_RESUME_FROM (model, optimizer, epoch and
batch, shuffle order, random number generators), so a resumed run ends after the same epochs,
with the same weights, as a run that was never stopped; on SIGTERM writes a checkpoint of where
it is, reports it and exits 143. Runs on the GPUs in CUDA_VISIBLE_DEVICES when CUDA is there,
else on the CPU.

Settings are flags from the config's command (``--epochs 5 --symbols AAPL,MSFT``); a training
job's ``params`` override them by the same names with underscores (``epochs``, ``hidden``,
``layers``, ``dropout``, ``seq_len``, ``batch_size``, ``lr``, ``seed``), and its ``symbols`` and
``datasetWindow`` override ``--symbols``, ``--from`` and ``--to``. For tests and drills,
``crash_at_epoch`` kills the run (SIGKILL) halfway through that epoch and ``fail_at_epoch``
makes it fail (exit 1) as that epoch starts.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any, Optional

# The job library of this checkout (README, "The PyTorch pipeline"): nothing to install.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))

import torch  # noqa: E402
from torch import nn  # noqa: E402

import bars  # noqa: E402
import caelum_job as job  # noqa: E402
from model import Samples, build_model, load_checkpoint, save_checkpoint  # noqa: E402

# What must be the same for a checkpoint to be resumed: the model and the data it learns from.
RESUMABLE = ("hidden", "layers", "dropout", "seq_len", "batch_size", "lr", "seed", "symbols", "from", "to")
# The last part of the training window scores each epoch (val_accuracy in its checkpoint event).
VALIDATION_SHARE = 0.15


class SettingsError(ValueError):
    """A flag or a job param the trainer cannot use: the run stops before training, saying which."""


def settings(argv: list[str]) -> dict[str, Any]:
    flags = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    flags.add_argument("--epochs", type=int, default=5)
    flags.add_argument("--hidden", type=int, default=32)
    flags.add_argument("--layers", type=int, default=1)
    flags.add_argument("--dropout", type=float, default=0.1)
    flags.add_argument("--seq-len", type=int, default=32)
    flags.add_argument("--batch-size", type=int, default=128)
    flags.add_argument("--lr", type=float, default=3e-3)
    flags.add_argument("--seed", type=int, default=7)
    flags.add_argument("--symbols", default="SPY", help="comma-separated tickers")
    flags.add_argument("--from", dest="from_", default="2019-01-01", help="first day of the training window")
    flags.add_argument("--to", default="2022-12-30", help="last day of the training window")
    args = flags.parse_args(argv)
    cfg: dict[str, Any] = {
        "epochs": args.epochs,
        "hidden": args.hidden,
        "layers": args.layers,
        "dropout": args.dropout,
        "seq_len": args.seq_len,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "crash_at_epoch": 0,
        "fail_at_epoch": 0,
    }
    for name, value in job.params().items():
        if name not in cfg:
            raise SettingsError(f"unknown param {name!r}; known: {', '.join(sorted(cfg))}")
        want = type(cfg[name])
        try:
            if isinstance(value, bool) or (want is int and isinstance(value, float) and not value.is_integer()):
                raise ValueError
            cfg[name] = want(value)
        except ValueError:
            raise SettingsError(f"param {name} is {value!r}, not {'a whole number' if want is int else 'a number'}") from None
    payload = job.payload()
    window = payload.get("datasetWindow") or {}
    cfg["symbols"] = list(payload.get("symbols") or [s for s in args.symbols.split(",") if s])
    try:
        cfg["from"] = bars.parse_day(window.get("from", args.from_)).isoformat()
        cfg["to"] = bars.parse_day(window.get("to", args.to)).isoformat()
    except ValueError as err:
        raise SettingsError(f"training window: {err}") from None
    for name in ("epochs", "hidden", "layers", "seq_len", "batch_size"):
        if cfg[name] < 1:
            raise SettingsError(f"{name} is {cfg[name]}: it must be 1 or more")
    if not cfg["symbols"]:
        raise SettingsError("no symbols to train on (--symbols or the job's symbols)")
    return cfg


def device_for(visible: Optional[list[str]]) -> torch.device:
    """The leased GPUs when CUDA is there (CUDA numbers them from 0), else the CPU."""
    if visible != [] and torch.cuda.is_available():
        return torch.device("cuda", 0)
    return torch.device("cpu")


def rng_state(shuffle: torch.Generator) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], shuffle: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    shuffle.set_state(state["shuffle"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def check_resumable(state: dict[str, Any], cfg: dict[str, Any], path: Path) -> None:
    saved = {**state["config"], **state["data"]}
    differ = [f"{k} {saved.get(k)!r} there, {cfg[k]!r} here" for k in RESUMABLE if saved.get(k) != cfg[k]]
    if differ:
        raise SettingsError(f"cannot resume from {path}: it was trained with other settings ({'; '.join(differ)})")


@torch.no_grad()
def evaluate(model: nn.Module, samples: Samples, device: torch.device) -> dict[str, float]:
    model.eval()
    logits = model(samples.x.to(device)).cpu()
    loss = nn.functional.binary_cross_entropy_with_logits(logits, samples.y).item()
    accuracy = ((logits > 0).float() == samples.y).float().mean().item()
    return {"val_accuracy": round(accuracy, 4), "val_loss": round(loss, 4)}


def train(cfg: dict[str, Any]) -> int:
    name = job.model() or "model"
    out = job.output_dir()
    device = device_for(job.gpus())
    torch.manual_seed(cfg["seed"])

    days = bars.index_range(bars.parse_day(cfg["from"]), bars.parse_day(cfg["to"]))
    calendar = bars.business_days()
    split = days[int(len(days) * (1 - VALIDATION_SHARE))]
    train_set = Samples(cfg["symbols"], calendar[days[0]], calendar[split - 1], cfg["seq_len"])
    val_set = Samples(cfg["symbols"], calendar[split], calendar[days[-1]], cfg["seq_len"], train_set.mean, train_set.std)

    model = build_model(cfg).to(device)
    net: nn.Module = nn.DataParallel(model) if device.type == "cuda" and torch.cuda.device_count() > 1 else model
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    loss_fn = nn.BCEWithLogitsLoss()
    shuffle = torch.Generator().manual_seed(cfg["seed"])
    epochs, batch_size = cfg["epochs"], cfg["batch_size"]
    batches = (len(train_set) + batch_size - 1) // batch_size

    done, start_batch, order, loss_sum = 0, 0, None, 0.0
    last: dict[str, float] = {}
    resume = job.resume_from()
    if resume is not None:
        state = load_checkpoint(resume)
        check_resumable(state, cfg, resume)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        restore_rng(state["rng"], shuffle)
        done, start_batch, order, loss_sum = state["epoch"], state["batch"], state["order"], state["loss_sum"]
        last = dict(state["metrics"])
        recorded = job.resume_epoch()
        note = "" if recorded in (None, done) else f" (the worker recorded epoch {recorded}; the file's own record counts)"
        job.log(f"resuming from {resume}: {done} epochs done, batch {start_batch} of the next{note}")
        if done >= epochs and order is None:
            # It had finished and was stopped before it could exit: report the finished checkpoint again.
            job.checkpoint(resume, epoch=done, **last)
            job.result(**last, epochs=done)
            return 0

    data = {"symbols": cfg["symbols"], "from": cfg["from"], "to": cfg["to"], "mean": train_set.mean, "std": train_set.std}
    config = {k: cfg[k] for k in ("hidden", "layers", "dropout", "seq_len", "batch_size", "lr", "seed", "epochs")}

    def snapshot(path: Path, epoch: int, batch: int, metrics: dict[str, float]) -> Path:
        return save_checkpoint(
            path,
            {
                "model": {k: v.cpu() for k, v in model.state_dict().items()},
                "optimizer": optimizer.state_dict(),
                "config": config,
                "data": data,
                "epoch": epoch,
                "batch": batch,
                "order": order,
                "loss_sum": loss_sum,
                "rng": rng_state(shuffle),
                "metrics": metrics,
            },
        )

    job.log(f"training {name} for {epochs} epochs on {device} ({len(train_set)} samples of {', '.join(cfg['symbols'])}, {batches} batches an epoch)")
    with job.graceful_stop() as stop:
        for epoch in range(done + 1, epochs + 1):
            if epoch == cfg["fail_at_epoch"]:
                print(f"CUDA error: out of memory at epoch {epoch} (simulated)", file=sys.stderr)
                return 1
            if order is None:
                order, start_batch, loss_sum = torch.randperm(len(train_set), generator=shuffle), 0, 0.0
            net.train()
            for b in range(start_batch, batches):
                if stop.requested:
                    # Where it is now, mid-epoch: the next start goes on from this very batch.
                    path = snapshot(out / f"{name}-e{epoch:03d}-b{b:05d}-stop.pt", epoch - 1, b, last)
                    job.checkpoint(path, epoch=epoch - 1, **last)
                    job.log(f"stopped by signal {stop.signal} at epoch {epoch}, batch {b}: {path}")
                    stop.exit()
                if epoch == cfg["crash_at_epoch"] and b == batches // 2:
                    os.kill(os.getpid(), signal.SIGKILL)
                idx = order[b * batch_size : (b + 1) * batch_size]
                x, y = train_set.x[idx].to(device), train_set.y[idx].to(device)
                optimizer.zero_grad()
                loss = loss_fn(net(x), y)
                loss.backward()
                optimizer.step()
                loss_sum += loss.item() * len(idx)
            order = None
            last = {"loss": round(loss_sum / len(train_set), 4), **evaluate(net, val_set, device)}
            path = snapshot(out / f"{name}-e{epoch:03d}.pt", epoch, 0, last)
            job.checkpoint(path, epoch=epoch, **last)
            job.progress(epoch, epochs, **last)
            job.log(f"epoch {epoch}/{epochs} " + " ".join(f"{k}={v}" for k, v in last.items()))
            if stop.requested and epoch < epochs:
                # Asked while it scored and saved: the checkpoint just reported is where it stops.
                stop.exit()
    job.result(**last, epochs=epochs)
    return 0


def main(argv: list[str]) -> int:
    try:
        cfg = settings(argv)
    except SettingsError as err:
        print(f"train.py: {err}", file=sys.stderr)
        return 2
    try:
        return train(cfg)
    except SettingsError as err:
        print(f"train.py: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
