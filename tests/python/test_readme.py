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


def _compile(source: str, tmp_path: Path, name: str) -> Path:
    lib = _build_dir() / "libprotium.a"
    if not lib.exists():
        pytest.fail(f"{lib} is missing: build first (make build)")
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    cc = shutil.which("cc") or "gcc"
    libs = subprocess.run(
        ["pkg-config", "--libs", "liblz4", "libzstd", "snappy", "zlib", "libbrotlidec", "libbrotlienc",
         "libprotobuf-c", "libuv", "rdkafka", "libpq", "libmariadb", "libssl", "libcrypto"],
        check=True, capture_output=True, text=True).stdout.split()
    exe = tmp_path / name
    subprocess.run(
        [cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", str(ROOT / "include"),
         str(src), str(lib), *libs, "-lpthread", "-lm", "-o", str(exe)],
        check=True)
    return exe


def test_readme_c_example_compiles_and_runs(tmp_path: Path) -> None:
    blocks = _readme_c_blocks()
    assert blocks, "README.md has no C example"
    # The snippet uses strlen; it includes what the README shows.
    exe = _compile("#include <string.h>\n" + blocks[0], tmp_path, "example")
    out = subprocess.run([str(exe)], cwd=tmp_path, check=True, capture_output=True, text=True)
    assert out.stdout.strip().splitlines() == ["3 rows"]
    table = pa.ipc.open_file(tmp_path / "people.arrow").read_all()
    assert table.to_pydict() == {"id": [0, 1, 2], "name": ["ada", None, "grace"]}
    assert table.schema.field("id").nullable is False


def test_readme_python_example_runs(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S)
              if "protium.arrow" in b]
    assert blocks, "README.md has no Python example of protium.arrow"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"), PT_BUILD_DIR=str(_build_dir()))
    import sys
    out = subprocess.run([sys.executable, "-c", blocks[0]], cwd=tmp_path, env=env,
                         check=True, capture_output=True, text=True)
    assert "x: [[1,2,3]]" in out.stdout


def test_readme_engine_example_compiles_and_runs(tmp_path: Path) -> None:
    blocks = _readme_c_blocks()
    assert len(blocks) >= 2, "README.md has no engine example"
    exe = _compile(blocks[1], tmp_path, "pipeline")
    out = subprocess.run([str(exe)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "wrote pipeline.out: 4 partitions, 1000000 rows"
    parts = sorted(p.name for p in (tmp_path / "pipeline.out").iterdir())
    assert parts == ["_SUCCESS"] + [f"part-{i:05d}.arrow" for i in range(4)]
    tables = [pa.ipc.open_file(tmp_path / "pipeline.out" / p).read_all()
              for p in parts if p.endswith(".arrow")]
    ids = sorted(i for t in tables for i in t.column("id").to_pylist())
    assert ids == list(range(1_000_000))  # every row, each once
    key_files: dict[int, set[int]] = {}
    for n, t in enumerate(tables):
        for i, k in zip(t.column("id").to_pylist(), t.column("key").to_pylist()):
            assert k == i % 10, (i, k)
            key_files.setdefault(k, set()).add(n)
    assert all(len(files) == 1 for files in key_files.values()), key_files  # by key


def test_readme_barrier_example_is_the_tested_one(tmp_path: Path) -> None:
    """The README's barrier-mode program is examples/barrier.c, word for word,
    and it compiles on its own and runs: four tasks, one barrier stage."""
    source = (ROOT / "examples" / "barrier.c").read_text()
    assert source in _readme_c_blocks()
    exe = _compile(source, tmp_path, "barrier")
    out = subprocess.run([str(exe)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == (
        "1000 rows, centred on the global mean: sum 0.000")
    assert "barrier example: 4 tasks, task 0 on " in out.stderr


def test_readme_gpu_example_is_the_tested_one(tmp_path: Path) -> None:
    """The README's accelerator example is examples/gpu_stages.c, word for
    word, and it compiles on its own and runs: 8 inference tasks sharing 4
    fake GPUs after a barrier stage of 4 trainers with one GPU each."""
    source = (ROOT / "examples" / "gpu_stages.c").read_text()
    assert source in _readme_c_blocks()
    exe = _compile(source, tmp_path, "gpu_stages")
    out = subprocess.run([str(exe)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    m = re.fullmatch(r"8 inference tasks on gpus 0-3: (\d+) (\d+) (\d+) (\d+); 1000 rows", last)
    assert m, last
    per_gpu = [int(g) for g in m.groups()]
    assert sum(per_gpu) == 8 and all(n <= 8 for n in per_gpu)
