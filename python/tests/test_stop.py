"""SIGTERM inside graceful_stop(): the loop sees the request, writes and reports its checkpoint, exits 143."""

from __future__ import annotations

import os
import signal
import tempfile
import textwrap
import unittest
from pathlib import Path

from support import end, events, spawn

import caelum_job as job

# A job whose loop checks the request between steps, as a trainer does between batches.
LOOP = textwrap.dedent(
    """
    import time, caelum_job as job
    with job.graceful_stop() as stop:
        step = 0
        job.progress(percent=0)
        while not stop.requested:
            step += 1
            time.sleep(0.01)
        path = job.output_dir() / "stop.pt"
        path.write_bytes(b"state at step %d" % step)
        job.log("stop requested by signal", stop.signal)
        job.checkpoint(path, epoch=2, loss=0.5)
        stop.exit()
    """
)


def wait_for_first_line(child) -> str:
    """The child's first line: it is inside graceful_stop() once it printed it."""
    line = child.stdout.readline()
    if not line:
        raise AssertionError(f"the child ended before it started its loop: {child.stderr.read()}")
    return line


class GracefulStopTest(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def run_until_signalled(self, *signals: int):
        child = spawn(LOOP, {"CAELUM_OUTPUT_DIR": self.dir.name})
        self.addCleanup(end, child)
        first = wait_for_first_line(child)
        for s in signals:
            child.send_signal(s)
        out, err = child.communicate(timeout=30)
        return child.returncode, first + out, err

    def test_sigterm_twice_as_the_worker_sends_it_writes_one_checkpoint_and_exits_143(self) -> None:
        # The worker signals the process group and every process of the run, so a job hears it twice.
        code, out, err = self.run_until_signalled(signal.SIGTERM, signal.SIGTERM)
        self.assertEqual(code, job.STOPPED_EXIT_CODE, err)
        self.assertEqual(job.STOPPED_EXIT_CODE, 128 + signal.SIGTERM)
        path = Path(self.dir.name, "stop.pt")
        self.assertEqual(
            [e for e in events(out) if e["event"] == "checkpoint"],
            [{"event": "checkpoint", "path": str(path), "epoch": 2, "metrics": {"loss": 0.5}}],
        )
        self.assertTrue(path.read_bytes().startswith(b"state at step "))
        self.assertIn(f"stop requested by signal {int(signal.SIGTERM)}", out)
        self.assertEqual(err, "")

    def test_sigint_asks_the_same_way(self) -> None:
        code, out, _ = self.run_until_signalled(signal.SIGINT)
        self.assertEqual(code, job.STOPPED_EXIT_CODE)
        self.assertEqual([e["event"] for e in events(out)], ["progress", "checkpoint"])

    def test_a_second_sigint_stops_at_once(self) -> None:
        child = spawn(
            "import time, caelum_job as job\n"
            "with job.graceful_stop() as stop:\n"
            "    job.progress(percent=0)\n"
            "    while not stop.requested: time.sleep(0.01)\n"
            "    job.log('asked')\n"
            "    while True: time.sleep(0.01)\n"
        )
        self.addCleanup(end, child)
        wait_for_first_line(child)
        child.send_signal(signal.SIGINT)
        # Signals sent together coalesce into one: the second goes once the first was heard.
        self.assertEqual(child.stdout.readline(), "asked\n")
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
        # An uncaught KeyboardInterrupt ends Python by SIGINT itself, as a shell expects.
        self.assertEqual(child.returncode, -signal.SIGINT)
        self.assertIn("KeyboardInterrupt", err)

    def test_handlers_are_put_back_and_nothing_is_requested_outside(self) -> None:
        before = signal.getsignal(signal.SIGTERM)
        self.assertFalse(job.stop_requested())
        with job.graceful_stop() as stop:
            self.assertIsNot(signal.getsignal(signal.SIGTERM), before)
            os.kill(os.getpid(), signal.SIGTERM)
            # A handler runs at the next bytecode boundary of the main thread: poll for it.
            for _ in range(1000):
                if stop.requested:
                    break
            self.assertTrue(stop.requested)
            self.assertTrue(job.stop_requested())
            self.assertEqual(stop.signal, signal.SIGTERM)
        self.assertIs(signal.getsignal(signal.SIGTERM), before)
        self.assertFalse(job.stop_requested())


if __name__ == "__main__":
    unittest.main()
