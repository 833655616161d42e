"""validate.py and backtest.py read a checkpoint train.py wrote and report in the examples' shapes."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Any

from test_train import HERE, env_for, events, run, setUpModule  # noqa: F401  (setUpModule: PyTorch must be there)


def script(name: str, out: Path, **env: str) -> tuple[int, list[dict[str, Any]], str]:
    child = subprocess.run([sys.executable, str(HERE / name)], env=env_for(out, **env), capture_output=True, text=True, timeout=300)
    return child.returncode, events(child.stdout), child.stderr + child.stdout


class ScoringTest(unittest.TestCase):
    tmp: tempfile.TemporaryDirectory[str]
    checkpoint: str

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory()
        code, evs, err = run(Path(cls.tmp.name, "train"), epochs=2)
        if code != 0:
            raise AssertionError(f"training failed ({code}): {err}")
        cls.checkpoint = [e for e in evs if e["event"] == "checkpoint"][-1]["path"]

    @classmethod
    def tearDownClass(cls) -> None:
        cls.tmp.cleanup()

    def test_validation_reports_directional_accuracy_on_the_held_out_year(self) -> None:
        code, evs, log = script("validate.py", Path(self.tmp.name, "v"), CAELUM_CHECKPOINT_PATH=self.checkpoint, CAELUM_CHECKPOINT_LABEL="test-lstm-v1.1.0")
        self.assertEqual(code, 0, log)
        metrics = evs[-1]["metrics"]
        self.assertEqual(set(metrics), {"val_accuracy", "prediction_accuracy", "val_loss", "samples"})
        self.assertEqual(metrics["val_accuracy"], metrics["prediction_accuracy"])
        self.assertEqual(metrics["samples"], 252)
        self.assertGreater(metrics["val_accuracy"], 0.5, "the trend in the bars can be learned")
        # The training window ends 2022-12-30; the held-out year starts on the next business day.
        self.assertIn("validated test-lstm-v1.1.0 on SPY from 2023-01-02 to 2023-12-19", log)

    def test_a_backtest_reports_the_backtesters_figures_per_symbol_and_overall(self) -> None:
        payload = {"model": "test-lstm", "symbols": ["SPY", "QQQ"], "timeframe": "1d", "window": {"from": "2024-01-01", "to": "2024-06-30"}}
        code, evs, log = script("backtest.py", Path(self.tmp.name, "b"), CAELUM_CHECKPOINT_PATH=self.checkpoint, CAELUM_PAYLOAD=json.dumps(payload))
        self.assertEqual(code, 0, log)
        result = evs[-1]
        figures = {"sharpe_ratio", "total_return", "max_drawdown", "win_rate", "trades"}
        self.assertEqual(set(result["metrics"]), figures)
        self.assertEqual([s["symbol"] for s in result["symbols"]], ["SPY", "QQQ"])
        for s in result["symbols"]:
            self.assertEqual(set(s), figures | {"symbol"})
            self.assertGreaterEqual(s["max_drawdown"], 0)
            self.assertLessEqual(s["win_rate"], 1)
        self.assertEqual(result["metrics"]["trades"], sum(s["trades"] for s in result["symbols"]))
        self.assertEqual(result["window"], {"from": "2024-01-01", "to": "2024-06-30"})
        self.assertEqual([e["percent"] for e in evs if e["event"] == "progress"], [50.0, 100.0])

    def test_a_backtest_without_a_checkpoint_or_on_another_timeframe_is_refused(self) -> None:
        code, _, log = script("backtest.py", Path(self.tmp.name, "b"), CAELUM_PAYLOAD=json.dumps({"model": "m", "symbols": ["SPY"]}))
        self.assertEqual(code, 2)
        self.assertIn("no checkpoint", log)
        payload = {"model": "m", "symbols": ["SPY"], "timeframe": "1h"}
        code, _, log = script("backtest.py", Path(self.tmp.name, "b"), CAELUM_CHECKPOINT_PATH=self.checkpoint, CAELUM_PAYLOAD=json.dumps(payload))
        self.assertEqual(code, 2)
        self.assertIn("timeframe 1h is not supported", log)

    def test_a_file_that_is_not_such_a_checkpoint_is_named(self) -> None:
        other = Path(self.tmp.name, "other.pt")
        other.write_text('{"weights": []}')
        code, _, log = script("validate.py", Path(self.tmp.name, "v"), CAELUM_CHECKPOINT_PATH=str(other))
        self.assertEqual(code, 2)
        self.assertRegex(log, rf"^validate.py: {other} is not a checkpoint torch can read as data: .+\n$")


if __name__ == "__main__":
    unittest.main()
