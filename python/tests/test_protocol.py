"""The event lines the library writes are the ones the worker reads (src/workers/protocol.ts)."""

from __future__ import annotations

import io
import json
import os
import tempfile
import unittest
from contextlib import redirect_stdout
from pathlib import Path

from support import events

import caelum_job as job


def captured(fn, *args, **kwargs) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        fn(*args, **kwargs)
    return out.getvalue()


class Scalar:
    """Stands for a numpy or torch scalar: a number behind .item()."""

    def __init__(self, value: float) -> None:
        self.value = value

    def item(self) -> float:
        return self.value


class ProgressTest(unittest.TestCase):
    def test_epoch_progress_carries_the_percent_and_metrics(self) -> None:
        text = captured(job.progress, 3, 10, loss=0.41, val_accuracy=Scalar(0.7))
        self.assertEqual(text.count("\n"), 1)
        self.assertEqual(
            json.loads(text),
            {"event": "progress", "epoch": 3, "epochs": 10, "percent": 30.0, "metrics": {"loss": 0.41, "val_accuracy": 0.7}},
        )

    def test_percent_alone_and_an_eta(self) -> None:
        self.assertEqual(events(captured(job.progress, percent=50, eta_seconds=12)), [{"event": "progress", "percent": 50, "etaSeconds": 12}])

    def test_refuses_what_json_or_the_worker_cannot_carry_and_writes_nothing(self) -> None:
        cases = [
            (lambda: job.progress(1, 2, loss=float("nan")), ValueError, "metric 'loss' is nan"),
            (lambda: job.progress(1, 2, loss=float("inf")), ValueError, "metric 'loss' is inf"),
            (lambda: job.progress(1, 2, loss="low"), TypeError, "metric 'loss' is str, not a number"),
            (lambda: job.progress(1, 2, done=True), TypeError, "metric 'done' is bool"),
            (lambda: job.progress(1, 0), ValueError, "epochs is 0"),
            (lambda: job.emit("done"), ValueError, "unknown event 'done'"),
        ]
        for call, error, message in cases:
            out = io.StringIO()
            with self.subTest(message), redirect_stdout(out):
                with self.assertRaises(error) as raised:
                    call()
                self.assertIn(message, str(raised.exception))
            self.assertEqual(out.getvalue(), "")


class CheckpointTest(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def test_reports_the_absolute_path_its_epoch_and_metrics(self) -> None:
        file = Path(self.dir.name, "e3.pt")
        file.write_bytes(b"weights")
        cwd = os.getcwd()
        os.chdir(self.dir.name)
        try:
            text = captured(job.checkpoint, "e3.pt", epoch=3, val_accuracy=0.71)
        finally:
            os.chdir(cwd)
        self.assertEqual(events(text), [{"event": "checkpoint", "path": str(file.resolve()), "epoch": 3, "metrics": {"val_accuracy": 0.71}}])

    def test_without_an_epoch_the_field_is_left_out(self) -> None:
        file = Path(self.dir.name, "final.pt")
        file.write_bytes(b"weights")
        self.assertEqual(events(captured(job.checkpoint, file)), [{"event": "checkpoint", "path": str(file), "metrics": {}}])

    def test_refuses_a_missing_file_and_a_bad_epoch(self) -> None:
        file = Path(self.dir.name, "e1.pt")
        with self.assertRaisesRegex(FileNotFoundError, "is not a file: write it before reporting it"):
            captured(job.checkpoint, file)
        file.write_bytes(b"w")
        for bad in (-1, 1.5, True, "3"):
            with self.subTest(bad), self.assertRaisesRegex(ValueError, "must be a whole number of epochs"):
                captured(job.checkpoint, file, epoch=bad)


class ResultAndLogTest(unittest.TestCase):
    def test_result_with_extra_fields_beside_the_metrics(self) -> None:
        text = captured(job.result, sharpe_ratio=1.2, trades=7, extra={"symbols": [{"symbol": "SPY", "trades": 7}]})
        self.assertEqual(
            events(text),
            [{"event": "result", "metrics": {"sharpe_ratio": 1.2, "trades": 7}, "symbols": [{"symbol": "SPY", "trades": 7}]}],
        )
        with self.assertRaisesRegex(ValueError, "extra field 'metrics' would replace"):
            captured(job.result, extra={"metrics": {}})

    def test_log_text_never_reads_as_an_event(self) -> None:
        text = captured(job.log, "epoch", 3, "done\n" + '{"event":"result","metrics":{}}')
        self.assertEqual(text, 'epoch 3 done\n# {"event":"result","metrics":{}}\n')
        self.assertEqual(events(text), [])


if __name__ == "__main__":
    unittest.main()
