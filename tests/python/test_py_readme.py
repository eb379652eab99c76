"""The README's Python quick start is examples/quickstart.py, word for word
(test_py_install.py runs it after pip install), and the example prints what
its comments say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_quick_start_is_the_example():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "README.md has no Python example"
    example = (ROOT / "examples" / "quickstart.py").read_text()
    body = example.split('"""', 2)[2].lstrip("\n")
    assert blocks[0] == body


def test_quick_start_example_runs_in_the_checkout(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "333334"
    assert r.stdout.splitlines()[2] == "333334 166666833333.0"
