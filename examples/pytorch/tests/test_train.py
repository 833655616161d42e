"""train.py resumes exactly and stops cleanly: run as the worker runs it, a child in a temp folder.

Run with the interpreter the PyTorch config uses, from the repository root:
    /usr/bin/python3 -m unittest discover -s examples/pytorch/tests
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parents[1]
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

try:
    import torch
except ImportError:  # reported by setUpModule, so that no test is skipped silently
    torch = None  # type: ignore[assignment]

# Small and quick, with many batches an epoch so that a stop usually lands mid-epoch.
ARGS = ["--symbols", "SPY", "--batch-size", "16", "--seed", "11"]
EPOCHS = 4


def setUpModule() -> None:
    if torch is None:
        raise RuntimeError(f"PyTorch is not importable by {sys.executable}: install it (Debian: apt-get install python3-torch; .ci/run does)")


def events(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            value = json.loads(line)
            if value.get("event") in ("progress", "checkpoint", "result"):
                out.append(value)
    return out


def env_for(out: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAELUM_")}
    return {**env, "CAELUM_OUTPUT_DIR": str(out), "CAELUM_MODEL": "test-lstm", "CUDA_VISIBLE_DEVICES": "", **extra}


def start(out: Path, epochs: int = EPOCHS, extra_args: Optional[list[str]] = None, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "train.py"), "--epochs", str(epochs), *ARGS, *(extra_args or [])],
        env=env_for(out, **env),
        cwd=out.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(out: Path, epochs: int = EPOCHS, extra_args: Optional[list[str]] = None, **env: str) -> tuple[int, list[dict[str, Any]], str]:
    child = start(out, epochs, extra_args, **env)
    stdout, stderr = child.communicate(timeout=300)
    return child.returncode, events(stdout), stderr


def end(child: subprocess.Popen[str]) -> None:
    """Kill a child a failed test left running, and reap it."""
    if child.poll() is None:
        child.kill()
    child.communicate()


def load(path: str | Path) -> dict[str, Any]:
    from model import load_checkpoint

    return load_checkpoint(Path(path))


class TrainerTest(unittest.TestCase):
    """One uninterrupted run is the reference every interrupted one must end up equal to."""

    tmp: tempfile.TemporaryDirectory[str]
    reference: dict[str, Any]
    reference_events: list[dict[str, Any]]

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory()
        code, evs, err = run(Path(cls.tmp.name, "uninterrupted"))
        if code != 0:
            raise AssertionError(f"the uninterrupted run failed ({code}): {err}")
        cls.reference_events = evs
        cls.reference = load(Path(cls.tmp.name, "uninterrupted", f"test-lstm-e{EPOCHS:03d}.pt"))

    @classmethod
    def tearDownClass(cls) -> None:
        cls.tmp.cleanup()

    def folder(self, name: str) -> Path:
        return Path(self.tmp.name, name)

    def assert_same_training(self, final: dict[str, Any]) -> None:
        ref = self.reference
        self.assertEqual((final["epoch"], final["batch"], final["order"]), (EPOCHS, 0, None))
        for key, tensor in ref["model"].items():
            self.assertTrue(torch.equal(tensor, final["model"][key]), f"weights {key} differ")
        for index, slots in ref["optimizer"]["state"].items():
            for slot, tensor in slots.items():
                self.assertTrue(torch.equal(tensor, final["optimizer"]["state"][index][slot]), f"optimizer {index}.{slot} differs")
        self.assertEqual(final["metrics"], ref["metrics"])

    def test_an_uninterrupted_run_reports_a_real_torch_checkpoint_every_epoch(self) -> None:
        checkpoints = [e for e in self.reference_events if e["event"] == "checkpoint"]
        self.assertEqual([e["epoch"] for e in checkpoints], list(range(1, EPOCHS + 1)))
        for e in checkpoints:
            self.assertEqual(Path(e["path"]).parent, self.folder("uninterrupted"))
            self.assertEqual(set(e["metrics"]), {"loss", "val_accuracy", "val_loss"})
            with open(e["path"], "rb") as f:
                self.assertEqual(f.read(2), b"PK", "torch.save writes a zip archive")
        self.assertEqual([e["epoch"] for e in self.reference_events if e["event"] == "progress"], list(range(1, EPOCHS + 1)))
        result = self.reference_events[-1]
        self.assertEqual(result["event"], "result")
        self.assertEqual(result["metrics"], {**checkpoints[-1]["metrics"], "epochs": EPOCHS})
        self.assertFalse([p.name for p in self.folder("uninterrupted").iterdir() if p.name.startswith(".")], "no temporary file left")

    def test_resuming_after_a_crash_ends_with_the_same_epochs_and_state(self) -> None:
        crashed = self.folder("crashed")
        code, evs, _ = run(crashed, CAELUM_PAYLOAD=json.dumps({"params": {"crash_at_epoch": 3}}))
        self.assertEqual(code, -signal.SIGKILL)
        reported = [e for e in evs if e["event"] == "checkpoint"]
        self.assertEqual([e["epoch"] for e in reported], [1, 2])

        resumed = self.folder("resumed")
        code, evs, err = run(resumed, CAELUM_RESUME_FROM=reported[-1]["path"], CAELUM_RESUME_EPOCH="2")
        self.assertEqual(code, 0, err)
        # Only the epochs left are trained: two, not four more.
        self.assertEqual([e["epoch"] for e in evs if e["event"] == "checkpoint"], [3, 4])
        self.assertEqual(evs[-1]["metrics"]["epochs"], EPOCHS)
        self.assert_same_training(load(resumed / f"test-lstm-e{EPOCHS:03d}.pt"))

    def test_sigterm_writes_a_checkpoint_of_where_it_is_exits_143_and_resumes_from_it(self) -> None:
        stopped = self.folder("stopped")
        child = start(stopped)
        self.addCleanup(end, child)
        assert child.stdout is not None
        seen = []
        for line in child.stdout:  # until epoch 1 is reported: the loop is running, inside graceful_stop()
            seen.append(line)
            if '"event":"progress"' in line:
                break
        child.send_signal(signal.SIGTERM)
        child.send_signal(signal.SIGTERM)  # as the worker sends it: to the group and to the process
        rest, err = child.communicate(timeout=120)
        self.assertEqual(child.returncode, 143, err)
        reported = [e for e in events("".join(seen) + rest) if e["event"] == "checkpoint"]
        last = reported[-1]
        self.assertLess(last["epoch"], EPOCHS, "it stopped before the end")
        self.assertTrue(Path(last["path"]).is_file())
        state = load(last["path"])
        self.assertEqual(state["epoch"], last["epoch"])
        if state["batch"]:  # mid-epoch: the order of the epoch in progress travels with it
            self.assertRegex(Path(last["path"]).name, r"^test-lstm-e\d{3}-b\d{5}-stop\.pt$")
            self.assertEqual(len(state["order"]), 887)
        self.assertNotIn("result", [e["event"] for e in events(rest)])

        resumed = self.folder("resumed-after-stop")
        code, evs, err = run(resumed, CAELUM_RESUME_FROM=last["path"], CAELUM_RESUME_EPOCH=str(last["epoch"]))
        self.assertEqual(code, 0, err)
        self.assertEqual([e["epoch"] for e in evs if e["event"] == "checkpoint"], list(range(last["epoch"] + 1, EPOCHS + 1)))
        self.assert_same_training(load(resumed / f"test-lstm-e{EPOCHS:03d}.pt"))

    def test_resuming_a_finished_run_reports_its_checkpoint_again_and_trains_nothing(self) -> None:
        final = self.folder("uninterrupted") / f"test-lstm-e{EPOCHS:03d}.pt"
        again = self.folder("again")
        code, evs, err = run(again, CAELUM_RESUME_FROM=str(final), CAELUM_RESUME_EPOCH=str(EPOCHS))
        self.assertEqual(code, 0, err)
        self.assertEqual([(e["event"], e.get("path")) for e in evs], [("checkpoint", str(final)), ("result", None)])
        self.assertEqual(evs[-1]["metrics"]["epochs"], EPOCHS)
        self.assertEqual(list(again.iterdir()) if again.exists() else [], [])

    def test_refuses_to_resume_a_checkpoint_trained_with_other_settings(self) -> None:
        first = self.folder("uninterrupted") / "test-lstm-e001.pt"
        code, evs, err = run(self.folder("other"), extra_args=["--hidden", "8"], CAELUM_RESUME_FROM=str(first))
        self.assertEqual((code, evs), (2, []))
        self.assertIn(f"cannot resume from {first}: it was trained with other settings (hidden 32 there, 8 here)", err)

    def test_bad_params_are_named_before_anything_runs(self) -> None:
        for params, message in (
            ({"epochs": "many"}, "param epochs is 'many', not a whole number"),
            ({"epochs": 2.5}, "param epochs is 2.5, not a whole number"),
            ({"learning_rate": 0.1}, "unknown param 'learning_rate'"),
            ({"epochs": 0}, "epochs is 0: it must be 1 or more"),
        ):
            with self.subTest(message):
                code, evs, err = run(self.folder("bad"), CAELUM_PAYLOAD=json.dumps({"params": params}))
                self.assertEqual((code, evs), (2, []))
                self.assertIn(message, err)


if __name__ == "__main__":
    unittest.main()
