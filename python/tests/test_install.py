"""`pip install ./python` works offline: the build backend is in the standard library."""

from __future__ import annotations

import base64
import hashlib
import importlib
import subprocess
import sys
import tempfile
import unittest
import zipfile
from pathlib import Path

from support import PYTHON_DIR

sys.path.insert(0, str(PYTHON_DIR / "_build"))
caelum_build = importlib.import_module("caelum_build")


class InstallTest(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def test_the_wheel_holds_the_typed_package_and_a_true_record(self) -> None:
        name = caelum_build.build_wheel(self.dir.name)
        self.assertEqual(name, "caelum_job-0.1.0-py3-none-any.whl")
        with zipfile.ZipFile(Path(self.dir.name, name)) as wheel:
            names = set(wheel.namelist())
            for expected in ("caelum_job/__init__.py", "caelum_job/py.typed", "caelum_job-0.1.0.dist-info/METADATA"):
                self.assertIn(expected, names)
            self.assertFalse([n for n in names if "__pycache__" in n or n.startswith("tests/")])
            self.assertIn("Requires-Python: >=3.9", wheel.read("caelum_job-0.1.0.dist-info/METADATA").decode())
            for row in wheel.read("caelum_job-0.1.0.dist-info/RECORD").decode().splitlines():
                path, digest, size = row.split(",")
                if path.endswith("RECORD"):
                    continue
                data = wheel.read(path)
                expected = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                self.assertEqual((digest, int(size)), (expected, len(data)), path)
            self.assertEqual(names, {row.split(",")[0] for row in wheel.read("caelum_job-0.1.0.dist-info/RECORD").decode().splitlines()})

    def test_pip_installs_it_without_an_index(self) -> None:
        target = Path(self.dir.name, "site")
        pip = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-index", "--no-cache-dir", "--disable-pip-version-check", "--target", str(target), str(PYTHON_DIR)],
            capture_output=True,
            text=True,
        )
        self.assertEqual(pip.returncode, 0, pip.stdout + pip.stderr)
        self.assertTrue((target / "caelum_job" / "py.typed").is_file())
        # The installed copy, not the checkout's: run from elsewhere with only the target on the path.
        probe = subprocess.run(
            [sys.executable, "-c", "import caelum_job; print(caelum_job.__file__); caelum_job.progress(1, 4)"],
            capture_output=True,
            text=True,
            cwd=self.dir.name,
            env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        )
        self.assertEqual(probe.returncode, 0, probe.stderr)
        first, second = probe.stdout.splitlines()
        self.assertTrue(first.startswith(str(target)), first)
        self.assertEqual(second, '{"event":"progress","epoch":1,"epochs":4,"percent":25.0}')

    def test_an_sdist_carries_the_backend_so_it_builds_again(self) -> None:
        import tarfile

        name = caelum_build.build_sdist(self.dir.name)
        with tarfile.open(Path(self.dir.name, name)) as sdist:
            members = set(sdist.getnames())
        for expected in ("pyproject.toml", "_build/caelum_build.py", "caelum_job/stop.py", "PKG-INFO"):
            self.assertIn(f"caelum_job-0.1.0/{expected}", members)


if __name__ == "__main__":
    unittest.main()
