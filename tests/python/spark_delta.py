"""spark_delta.py — a PySpark session with delta-spark for the tests, in its
own process: the Spark environment (.venv-spark, with the jars in
.cache/delta-spark-<version>/libs, both made by scripts/fetch-delta-spark)
runs spark_delta_server.py, and the tests hand it code to run. One session
serves a whole test module, as Spark's start is most of its cost.

Where the environment is missing the tests are skipped, unless
PT_REQUIRE_SPARK=1 (scripts/test.sh sets it): then they fail, so that
`make test` never passes without having run them.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any, Optional

import pytest

from conftest import ROOT

SPARK_PYTHON = ROOT / ".venv-spark" / "bin" / "python"
REQUIREMENTS = ROOT / "python" / "requirements-spark.txt"
SERVER = Path(__file__).with_name("spark_delta_server.py")
MARK = "@@spark-delta@@ "


def jars_dir() -> Path:
    pins = dict(re.findall(r"^([\w-]+)==(\S+)", REQUIREMENTS.read_text(), re.M))
    return ROOT / ".cache" / f"delta-spark-{pins['delta-spark']}" / "libs"


def missing() -> Optional[str]:
    """Why the Spark environment cannot run here, or None."""
    if not SPARK_PYTHON.exists():
        return f"{SPARK_PYTHON} is missing: run scripts/fetch-delta-spark"
    if not (jars_dir().parent / "complete").exists():
        return f"the delta-spark jars ({jars_dir()}) are missing: run scripts/fetch-delta-spark"
    return None


def require() -> None:
    """Skips (or, with PT_REQUIRE_SPARK=1, fails) the calling test when the
    Spark environment is missing."""
    why = missing()
    if why is None:
        return
    if os.environ.get("PT_REQUIRE_SPARK") == "1":
        pytest.fail(why)
    pytest.skip(why)


class SparkError(Exception):
    """Code run in the Spark process raised; the message is its traceback."""


class Spark:
    """The Spark process. `run(code)` runs Python there, with `spark` and the
    helpers of spark_delta_server.py in scope, and returns the value the
    code left in `result` (JSON)."""

    def __init__(self, timeout: float = 300) -> None:
        self._log = tempfile.TemporaryFile()
        env = dict(os.environ, TZ="UTC", PYSPARK_PYTHON=str(SPARK_PYTHON),
                   PYSPARK_DRIVER_PYTHON=str(SPARK_PYTHON))
        env.pop("PYTHONPATH", None)
        self._proc = subprocess.Popen([str(SPARK_PYTHON), str(SERVER), str(jars_dir())],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._log, text=True, env=env)
        self._answers: "queue.Queue[Optional[str]]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.version = self._answer(timeout)

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.startswith(MARK):
                self._answers.put(line[len(MARK):])
        self._answers.put(None)

    def _stderr_tail(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-3000:]

    def _answer(self, timeout: float) -> Any:
        try:
            line = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise SparkError(f"no answer from Spark in {timeout} s:\n{self._stderr_tail()}")
        if line is None:
            raise SparkError(f"the Spark process ended (rc {self._proc.wait()}):\n"
                             f"{self._stderr_tail()}")
        answer = json.loads(line)
        if not answer["ok"]:
            raise SparkError(answer["error"])
        return answer["result"]

    def run(self, code: str, timeout: float = 300) -> Any:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"code": code}) + "\n")
        self._proc.stdin.flush()
        return self._answer(timeout)

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.close()
