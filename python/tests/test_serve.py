"""serve(handler): once in a cold process; job after job from standard input in a warm one."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest
from pathlib import Path
from typing import Any, Optional

from support import child_env, events

import caelum_job as job

# A handler that shows what it saw: its process, its variables, its payload both ways, its stdin.
HANDLER = textwrap.dedent(
    """
    import os, sys, threading
    import caelum_job as job

    def handle(payload):
        if "fail" in payload:
            raise ValueError(f"no bars for {payload['fail']}")
        if "exit" in payload:
            sys.exit(payload["exit"])
        if "job_field" in payload:
            job.emit("result", {"job": "someone else"})
        print("working on", payload.get("n"))        # not flushed: must still come before `done`
        reporter = threading.Thread(target=lambda: job.progress(percent=50))
        reporter.start()
        reporter.join()
        seen = {name: os.environ.get(name) for name in ("CAELUM_JOB_ID", "CAELUM_CHECKPOINT_PATH", "KEEP")}
        job.result(n=payload.get("n", 0), extra={"pid": os.getpid(), "env": seen, "fromEnv": job.payload(), "stdin": sys.stdin.read()})

    job.serve(handle)
    """
)

# The trainer loop of test_stop.py inside a handler: SIGTERM still asks for a checkpoint and 143.
STOPPABLE = textwrap.dedent(
    """
    import time, caelum_job as job

    def train(payload):
        with job.graceful_stop() as stop:
            job.progress(percent=0)
            while not stop.requested:
                time.sleep(0.01)
            path = job.output_dir() / "stop.pt"
            path.write_bytes(b"state")
            job.checkpoint(path, epoch=1, loss=0.5)
            stop.exit()

    job.serve(train)
    """
)


def line(job_id: str, payload: dict[str, Any], env: Optional[dict[str, str]] = None) -> str:
    """A job as the worker hands it to a warm runner."""
    full = {"CAELUM_JOB_ID": job_id, "CAELUM_PAYLOAD": json.dumps(payload), **(env or {})}
    return json.dumps({"job": job_id, "payload": payload, "env": full}) + "\n"


def outputs(text: str) -> list[dict[str, Any]]:
    """Every JSON object line of standard output: the events, and `done`."""
    return [json.loads(ln) for ln in text.splitlines() if ln.startswith("{")]


class ServeCase(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def start(self, code: str, warm: bool, env: Optional[dict[str, str]] = None) -> subprocess.Popen[str]:
        extra = {"CAELUM_RUNNER": "warm"} if warm else {}
        child = subprocess.Popen(
            [sys.executable, "-c", code],
            env=child_env({**extra, **(env or {})}),
            cwd=self.dir.name,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.addCleanup(stop, child)
        return child

    def run_jobs(self, lines: str, code: str = HANDLER, env: Optional[dict[str, str]] = None) -> tuple[int, str, str]:
        child = self.start(code, warm=True, env=env)
        out, err = child.communicate(lines, timeout=60)
        return child.returncode, out, err


class WarmTest(ServeCase):
    def test_jobs_run_one_after_another_in_one_process_each_event_tagged(self) -> None:
        code, out, err = self.run_jobs(line("backtest.a", {"n": 1}) + line("backtest.b", {"n": 2}) + line("backtest.c", {"n": 3}))
        self.assertEqual((code, err), (0, ""))
        lines = out.splitlines()
        # Per job: its printed text, its progress (from another thread), its result, then done.
        for i, job_id in enumerate(["backtest.a", "backtest.b", "backtest.c"]):
            self.assertEqual(lines[4 * i], f"working on {i + 1}")
            progress, result, done = (json.loads(x) for x in lines[4 * i + 1 : 4 * i + 4])
            self.assertEqual(progress, {"event": "progress", "percent": 50, "job": job_id})
            self.assertEqual((result["event"], result["job"], result["metrics"]), ("result", job_id, {"n": i + 1}))
            self.assertEqual(result["fromEnv"], {"n": i + 1})
            self.assertEqual(result["env"]["CAELUM_JOB_ID"], job_id)
            self.assertEqual(done, {"event": "done", "job": job_id, "ok": True})
        self.assertEqual(len(lines), 12)
        pids = {e["pid"] for e in events(out) if e["event"] == "result"}
        self.assertEqual(len(pids), 1)
        # The worker reads these lines as events of the protocol it already knows.
        self.assertEqual([e["event"] for e in events(out)], ["progress", "result"] * 3)

    def test_a_jobs_variables_hold_for_that_job_only(self) -> None:
        code, out, err = self.run_jobs(
            line("backtest.a", {"n": 1}, {"CAELUM_CHECKPOINT_PATH": "/ckpt/a.pt", "KEEP": "from job a"})
            + line("backtest.b", {"n": 2})
            + line("backtest.c", {"n": 3}, {"KEEP": "from job c"}),
            env={"KEEP": "the runner's own"},
        )
        self.assertEqual((code, err), (0, ""))
        seen = [e["env"] for e in events(out) if e["event"] == "result"]
        self.assertEqual(
            seen,
            [
                {"CAELUM_JOB_ID": "backtest.a", "CAELUM_CHECKPOINT_PATH": "/ckpt/a.pt", "KEEP": "from job a"},
                {"CAELUM_JOB_ID": "backtest.b", "CAELUM_CHECKPOINT_PATH": None, "KEEP": "the runner's own"},
                {"CAELUM_JOB_ID": "backtest.c", "CAELUM_CHECKPOINT_PATH": None, "KEEP": "from job c"},
            ],
        )

    def test_an_exception_fails_that_job_only(self) -> None:
        code, out, err = self.run_jobs(line("backtest.a", {"n": 1}) + line("backtest.b", {"fail": "NODATA"}) + line("backtest.c", {"n": 3}))
        self.assertEqual(code, 0)
        done = [o for o in outputs(out) if o["event"] == "done"]
        self.assertEqual(
            done,
            [
                {"event": "done", "job": "backtest.a", "ok": True},
                {"event": "done", "job": "backtest.b", "ok": False, "error": "ValueError: no bars for NODATA"},
                {"event": "done", "job": "backtest.c", "ok": True},
            ],
        )
        self.assertIn("Traceback (most recent call last)", err)
        self.assertTrue(err.rstrip().endswith("ValueError: no bars for NODATA"), err)
        self.assertEqual(len({e["pid"] for e in events(out) if e["event"] == "result"}), 1)

    def test_a_job_cannot_take_the_job_tag_for_a_field(self) -> None:
        code, out, _ = self.run_jobs(line("backtest.a", {"job_field": True}))
        self.assertEqual(code, 0)
        self.assertEqual(
            outputs(out),
            [{"event": "done", "job": "backtest.a", "ok": False, "error": "ValueError: field 'job' is taken: a warm runner tags every event with its job's id"}],
        )

    def test_end_of_input_exits_0(self) -> None:
        self.assertEqual(self.run_jobs(""), (0, "", ""))
        code, out, err = self.run_jobs(line("backtest.a", {"n": 1}))
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(outputs(out)[-1], {"event": "done", "job": "backtest.a", "ok": True})

    def test_the_handler_reads_an_empty_standard_input_as_a_cold_job_does(self) -> None:
        # Were the job channel its stdin, the handler's read would wait for the next job's line.
        child = self.start(HANDLER, warm=True)
        child.stdin.write(line("backtest.a", {"n": 1}))
        child.stdin.flush()
        result = [o for o in read_until_done(child, 30) if o["event"] == "result"]
        self.assertEqual([r["stdin"] for r in result], [""])

    def test_a_malformed_line_exits_2_after_the_jobs_before_it(self) -> None:
        for bad, problem in [
            ("not json\n", "not JSON"),
            ("[1, 2]\n", "a JSON list, not an object"),
            ('{"payload": {}}\n', "no job id"),
            ('{"job": "x", "payload": []}\n', '"payload" must be an object'),
            ('{"job": "x", "payload": {}, "env": {"A": 1}}\n', '"env" must map variable names to strings'),
        ]:
            with self.subTest(bad=bad):
                code, out, err = self.run_jobs(line("backtest.a", {"n": 1}) + bad + line("backtest.c", {"n": 3}))
                self.assertEqual(code, job.MALFORMED_EXIT_CODE)
                self.assertEqual([o["job"] for o in outputs(out) if o["event"] == "done"], ["backtest.a"])
                self.assertIn("a line on standard input is not a job", err)
                self.assertIn(problem, err)

    def test_sys_exit_0_completes_the_job_and_a_non_zero_exit_ends_the_runner(self) -> None:
        code, out, _ = self.run_jobs(line("backtest.a", {"exit": 0}) + line("backtest.b", {"exit": 3}) + line("backtest.c", {"n": 3}))
        # The worker fails job b with exit code 3 and starts a fresh process for the next job.
        self.assertEqual(code, 3)
        self.assertEqual(outputs(out), [{"event": "done", "job": "backtest.a", "ok": True}])

    def test_each_event_is_written_at_once_so_the_worker_can_wait_for_done(self) -> None:
        child = self.start(HANDLER, warm=True)
        for n, job_id in enumerate(["backtest.a", "backtest.b"], 1):
            child.stdin.write(line(job_id, {"n": n}))
            child.stdin.flush()
            self.assertEqual(read_until_done(child, 30)[-1], {"event": "done", "job": job_id, "ok": True})
        child.stdin.close()
        self.assertEqual(child.wait(timeout=30), 0)

    def test_sigterm_inside_graceful_stop_still_writes_the_checkpoint_and_exits_143(self) -> None:
        child = self.start(STOPPABLE, warm=True)
        child.stdin.write(line("training.a", {}, {"CAELUM_OUTPUT_DIR": self.dir.name}))
        child.stdin.flush()
        self.assertEqual(json.loads(child.stdout.readline()), {"event": "progress", "percent": 0, "job": "training.a"})
        child.send_signal(signal.SIGTERM)
        out, _ = child.communicate(timeout=30)
        self.assertEqual(child.returncode, job.STOPPED_EXIT_CODE)
        path = str(Path(self.dir.name, "stop.pt"))
        # No `done`: a stop is not a finished job.
        self.assertEqual(outputs(out), [{"event": "checkpoint", "path": path, "epoch": 1, "metrics": {"loss": 0.5}, "job": "training.a"}])


class ColdTest(ServeCase):
    def run_cold(self, payload: dict[str, Any], code: str = HANDLER) -> tuple[int, str, str]:
        child = self.start(code, warm=False, env={"CAELUM_PAYLOAD": json.dumps(payload), "CAELUM_JOB_ID": "backtest.cold"})
        # A cold job's input is not read: this line stays where it is.
        out, err = child.communicate(line("backtest.other", {"n": 9}), timeout=60)
        return child.returncode, out, err

    def test_the_handler_runs_once_with_the_environment_as_it_is(self) -> None:
        code, out, err = self.run_cold({"n": 7})
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(out.splitlines()[0], "working on 7")
        progress, result = outputs(out)
        self.assertEqual(progress, {"event": "progress", "percent": 50})
        self.assertEqual(result["metrics"], {"n": 7})
        self.assertEqual(result["env"]["CAELUM_JOB_ID"], "backtest.cold")
        self.assertNotIn("job", result)

    def test_an_exception_prints_its_traceback_and_exits_1(self) -> None:
        code, out, err = self.run_cold({"fail": "NODATA"})
        self.assertEqual((code, out), (1, ""))
        self.assertIn("Traceback (most recent call last)", err)
        self.assertTrue(err.rstrip().endswith("ValueError: no bars for NODATA"), err)

    def test_sys_exit_keeps_its_code(self) -> None:
        self.assertEqual(self.run_cold({"exit": 4})[0], 4)

    def test_sigterm_inside_graceful_stop_exits_143(self) -> None:
        child = self.start(STOPPABLE, warm=False, env={"CAELUM_OUTPUT_DIR": self.dir.name})
        self.assertEqual(json.loads(child.stdout.readline()), {"event": "progress", "percent": 0})
        child.send_signal(signal.SIGTERM)
        out, _ = child.communicate(timeout=30)
        self.assertEqual(child.returncode, job.STOPPED_EXIT_CODE)
        self.assertEqual([e["event"] for e in events(out)], ["checkpoint"])


def stop(child: subprocess.Popen[str]) -> None:
    """Kill a runner a failed test left running, reap it, close its pipes."""
    if child.poll() is None:
        child.kill()
    child.wait()
    for stream in (child.stdin, child.stdout, child.stderr):
        if stream is not None:
            stream.close()


def read_until_done(child: subprocess.Popen[str], seconds: float) -> list[dict[str, Any]]:
    """The child's JSON lines up to its next `done`, failing after `seconds` rather than hanging.

    Read straight from the descriptor, not through the pipe's buffered reader, which could hold
    the line that `select` waits for.
    """
    assert child.stdout is not None
    fd = child.stdout.fileno()
    deadline = time.monotonic() + seconds
    pending = b""
    seen: list[dict[str, Any]] = []
    while True:
        while b"\n" in pending:
            text, pending = pending.split(b"\n", 1)
            if text.startswith(b"{"):
                seen.append(json.loads(text))
                if seen[-1]["event"] == "done":
                    if pending:
                        raise AssertionError(f"output after done, before the next job: {pending!r}")
                    return seen
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"no done within {seconds} s; read so far: {seen} {pending!r}")
        chunk = os.read(fd, 65536)
        if not chunk:
            raise AssertionError(f"the runner ended (exit {child.wait()}) before its done")
        pending += chunk


if __name__ == "__main__":
    unittest.main()
