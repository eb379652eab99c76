"""`pip install .` from the repository into a fresh virtual environment
builds libprotium and the package (scikit-build-core driving CMake), and the
quick-start example then runs from another directory with no protium
environment variable: the installed package finds its own library and
starts its executors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pip_install_into_a_fresh_venv_then_the_example_runs(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PT_", "PROTIUM_", "PYTHON")) and k != "VIRTUAL_ENV"}
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        str(ROOT)], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = subprocess.run([str(py), str(ROOT / "examples" / "quickstart.py")], cwd=elsewhere,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "333334"
    assert lines[1].startswith("[{'id': 0, 'y': 0, 'score': 0.0}, {'id': 3, 'y': 6, ")
    assert lines[2] == "333334 166666833333.0"
    where = subprocess.run([str(py), "-c", "import protium._lib as l; print(l.library_path())"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.strip().startswith(str(venv))
