#!/usr/bin/env python3
"""Score a checkpoint on held-out days, as a caelum-scheduler validation job.

Loads the checkpoint named by CAELUM_CHECKPOINT_PATH (or the first argument, by hand) and
reports its directional accuracy (how often it calls the next day's close, up or down, right)
on the year of business days after its training window, which training never saw, for the
symbols it learned. Like examples/validator.mjs it reports ``val_accuracy`` (what the model's
thresholds in workers.config.ts judge) and ``prediction_accuracy``, here the same figure, plus
``val_loss`` and the number of ``samples``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The job library of this checkout (README, "The PyTorch pipeline"): nothing to install.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))

from torch import nn  # noqa: E402

import caelum_job as job  # noqa: E402
from model import Samples, held_out_window, load_checkpoint, model_from, predict, run_scoring  # noqa: E402


def main(argv: list[str]) -> int:
    path = job.checkpoint_path() or (Path(argv[0]) if argv else None)
    if path is None:
        print("validate.py: no checkpoint: set CAELUM_CHECKPOINT_PATH or name the file", file=sys.stderr)
        return 2
    state = load_checkpoint(path)
    data = state["data"]
    first, last = held_out_window(state)
    samples = Samples(data["symbols"], first, last, state["config"]["seq_len"], data["mean"], data["std"])
    job.progress(percent=50)
    p = predict(model_from(state), samples)
    accuracy = round(((p > 0.5).float() == samples.y).float().mean().item(), 4)
    loss = round(nn.functional.binary_cross_entropy(p.clamp(1e-7, 1 - 1e-7), samples.y).item(), 4)
    label = job.checkpoint_label() or path.name
    job.log(f"validated {label} on {', '.join(data['symbols'])} from {first} to {last}: directional accuracy {accuracy} over {len(samples)} days")
    job.progress(percent=100)
    job.result(val_accuracy=accuracy, prediction_accuracy=accuracy, val_loss=loss, samples=len(samples))
    return 0


if __name__ == "__main__":
    run_scoring("validate.py", main)
