"""Shared by the tests: the checkout's library first on the path, and a child-process runner.

The tests run from the repository root with ``python3 -m unittest discover -s python/tests``;
they test this checkout's ``caelum_job``, even where another copy is installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

PYTHON_DIR = Path(__file__).resolve().parents[1]
if str(PYTHON_DIR) not in sys.path:
    sys.path.insert(0, str(PYTHON_DIR))


def events(text: str) -> list[dict[str, Any]]:
    """The event lines of a job's standard output, read as the worker reads them (protocol.ts)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and value.get("event") in ("progress", "checkpoint", "result"):
            out.append(value)
    return out


def child_env(extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    """A job's environment: this one without CAELUM_ variables, the library importable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAELUM_")}
    env["PYTHONPATH"] = str(PYTHON_DIR)
    env.update(extra or {})
    return env


def spawn(code: str, env: Optional[dict[str, str]] = None, cwd: Optional[str] = None) -> subprocess.Popen[str]:
    """Start `code` in a child of this interpreter, its output piped, as the worker starts a job."""
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env=child_env(env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def end(child: subprocess.Popen[str]) -> None:
    """Kill a child a failed test left running, and reap it."""
    if child.poll() is None:
        child.kill()
    child.communicate()
