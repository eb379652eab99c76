"""The README's C example compiles against libprotium, runs, and does what the
README says it does (docs that stay true)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _build_dir() -> Path:
    return Path(os.environ.get("PT_BUILD_DIR", ROOT / "build"))


def _readme_c_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```c\n(.*?)```", text, flags=re.S)


def test_readme_has_the_two_commands_first() -> None:
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```sh\n(.*?)```", text, flags=re.S)
    assert first_block is not None
    assert "make demo" in first_block.group(1)
    assert "make test" in first_block.group(1)


def test_readme_c_example_compiles_and_runs(tmp_path: Path) -> None:
    blocks = _readme_c_blocks()
    assert blocks, "README.md has no C example"
    lib = _build_dir() / "libprotium.a"
    if not lib.exists():
        pytest.fail(f"{lib} is missing: build first (make build)")
    src = tmp_path / "example.c"
    # The snippet uses strlen; it includes what the README shows.
    src.write_text("#include <string.h>\n" + blocks[0])
    cc = shutil.which("cc") or "gcc"
    libs = subprocess.run(
        ["pkg-config", "--libs", "liblz4", "libzstd", "libprotobuf-c", "libuv"],
        check=True, capture_output=True, text=True).stdout.split()
    exe = tmp_path / "example"
    subprocess.run(
        [cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", str(ROOT / "include"),
         str(src), str(lib), *libs, "-lpthread", "-lm", "-o", str(exe)],
        check=True)
    out = subprocess.run([str(exe)], cwd=tmp_path, check=True, capture_output=True, text=True)
    assert out.stdout.strip().splitlines() == ["3 rows"]
    table = pa.ipc.open_file(tmp_path / "people.arrow").read_all()
    assert table.to_pydict() == {"id": [0, 1, 2], "name": ["ada", None, "grace"]}
    assert table.schema.field("id").nullable is False


def test_readme_python_example_runs(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README.md has no Python example"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"), PT_BUILD_DIR=str(_build_dir()))
    import sys
    out = subprocess.run([sys.executable, "-c", blocks[0]], cwd=tmp_path, env=env,
                         check=True, capture_output=True, text=True)
    assert "x: [[1,2,3]]" in out.stdout
