"""`protium demo`: the engine's pipeline on local[2] runs, and what it writes is
right when pyarrow reads it (every id once, each key in one file only)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc

ROOT = Path(__file__).resolve().parents[2]


def _protium() -> Path:
    return Path(os.environ.get("PT_BUILD_DIR", ROOT / "build")) / "protium"


def test_demo_writes_a_committed_exact_output(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    run = subprocess.run([str(_protium()), "demo", str(out_dir)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "check      ok: every id once" in run.stdout
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == ["_SUCCESS"] + [f"part-{i:05d}.arrow" for i in range(4)]
    ids: list[int] = []
    key_file: dict[int, int] = {}
    for i in range(4):
        table = pa.ipc.open_file(out_dir / f"part-{i:05d}.arrow").read_all()
        assert table.schema.names == ["id", "key", "label", "score"]
        ids.extend(table.column("id").to_pylist())
        for k in set(table.column("key").to_pylist()):
            assert key_file.setdefault(k, i) == i, f"key {k} is in two files"
        labels = table.column("label").to_pylist()
        assert all(l == ("even" if v % 2 == 0 else "odd")
                   for v, l in zip(table.column("id").to_pylist(), labels))
    assert sorted(ids) == list(range(1_000_000))


def test_demo_refuses_a_directory_with_files(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    run = subprocess.run([str(_protium()), "demo", str(tmp_path)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 1
    assert "protium: demo: write_ipc:" in run.stderr
    assert (tmp_path / "something").read_text() == "x"


def test_demo_without_a_directory_leaves_nothing(tmp_path: Path) -> None:
    env = dict(os.environ, TMPDIR=str(tmp_path))
    run = subprocess.run([str(_protium()), "demo"], capture_output=True, text=True,
                         timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    assert list(tmp_path.iterdir()) == []
