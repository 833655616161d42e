"""What the library reads from the environment the worker gives a job (running-job.ts childEnv)."""

from __future__ import annotations

import os
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import support  # noqa: F401  (the checkout's library first)

import caelum_job as job


def env(**values: str):
    """The job's variables exactly: the CAELUM_ ones and CUDA_VISIBLE_DEVICES of this process cleared."""
    cleared = {k: v for k, v in os.environ.items() if not k.startswith("CAELUM_") and k != "CUDA_VISIBLE_DEVICES"}
    return mock.patch.dict(os.environ, {**cleared, **values}, clear=True)


class EnvironmentTest(unittest.TestCase):
    def test_a_job_reads_what_the_worker_set(self) -> None:
        with tempfile.TemporaryDirectory() as tmp, env(
            CAELUM_JOB_ID="training-llm1-tech.5f0c",
            CAELUM_ATTEMPT="2",
            CAELUM_KIND="training",
            CAELUM_MODEL="llm1-tech",
            CAELUM_HOST="gpu-62",
            CAELUM_OUTPUT_DIR=os.path.join(tmp, "job", "attempt-2"),
            CAELUM_PAYLOAD='{"model":"llm1-tech","params":{"epochs":4},"symbols":["AAPL"]}',
            CAELUM_RESUME_FROM="/ckpt/e3.pt",
            CAELUM_RESUME_EPOCH="3",
            CUDA_VISIBLE_DEVICES="GPU-1a2b,GPU-3c4d",
        ):
            self.assertEqual(job.job_id(), "training-llm1-tech.5f0c")
            self.assertEqual(job.attempt(), 2)
            self.assertEqual((job.kind(), job.model(), job.host()), ("training", "llm1-tech", "gpu-62"))
            self.assertEqual(job.payload()["symbols"], ["AAPL"])
            self.assertEqual(job.params(), {"epochs": 4})
            out = job.output_dir()
            self.assertEqual(out, Path(tmp, "job", "attempt-2"))
            self.assertTrue(out.is_dir())
            self.assertEqual(job.resume_from(), Path("/ckpt/e3.pt"))
            self.assertEqual(job.resume_epoch(), 3)
            self.assertEqual(job.gpus(), ["GPU-1a2b", "GPU-3c4d"])

    def test_a_validation_reads_its_checkpoint(self) -> None:
        with env(CAELUM_CHECKPOINT_PATH="/ckpt/e5.pt", CAELUM_CHECKPOINT_ID="12", CAELUM_CHECKPOINT_LABEL="llm1-tech-v1.12.0"):
            self.assertEqual((job.checkpoint_path(), job.checkpoint_id(), job.checkpoint_label()), (Path("/ckpt/e5.pt"), 12, "llm1-tech-v1.12.0"))

    def test_run_by_hand_nothing_is_set(self) -> None:
        with env():
            self.assertEqual(job.payload(), {})
            self.assertEqual(job.params(), {})
            self.assertIsNone(job.resume_from())
            self.assertIsNone(job.resume_epoch())
            self.assertIsNone(job.gpus(), "unset: CUDA would show every GPU")
            self.assertIsNone(job.checkpoint_path())
            with self.assertRaisesRegex(RuntimeError, "CAELUM_OUTPUT_DIR is not set"):
                job.output_dir()

    def test_empty_means_unset_and_a_cpu_job_has_no_gpus(self) -> None:
        with env(CAELUM_RESUME_FROM="", CAELUM_RESUME_EPOCH="", CAELUM_PAYLOAD="", CUDA_VISIBLE_DEVICES=""):
            self.assertIsNone(job.resume_from())
            self.assertIsNone(job.resume_epoch())
            self.assertEqual(job.payload(), {})
            self.assertEqual(job.gpus(), [])

    def test_bad_values_are_named(self) -> None:
        cases = [
            ({"CAELUM_PAYLOAD": "{not json"}, job.payload, "CAELUM_PAYLOAD is not JSON"),
            ({"CAELUM_PAYLOAD": "[1]"}, job.payload, "CAELUM_PAYLOAD is a JSON list, not an object"),
            ({"CAELUM_PAYLOAD": '{"params":[1]}'}, job.params, "params is a list"),
            ({"CAELUM_RESUME_EPOCH": "three"}, job.resume_epoch, "CAELUM_RESUME_EPOCH is 'three', not a whole number"),
            ({"CAELUM_ATTEMPT": "1.5"}, job.attempt, "CAELUM_ATTEMPT is '1.5'"),
        ]
        for values, read, message in cases:
            with self.subTest(message), env(**values), self.assertRaisesRegex(ValueError, message):
                read()


if __name__ == "__main__":
    unittest.main()
