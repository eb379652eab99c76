"""sql_require.py — what the SQL tests need that setup installs: the
PostgreSQL 15 and MariaDB server binaries and the ADBC driver wheels.

Where one is missing its tests are skipped, unless PT_REQUIRE_SQL=1
(scripts/test.sh sets it): then they fail, saying what is missing, so that
`make test` never passes without having run them.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")
MARIADBD = Path("/usr/sbin/mariadbd")


def _missing(what: str) -> None:
    if os.environ.get("PT_REQUIRE_SQL") == "1":
        pytest.fail(f"{what} missing and PT_REQUIRE_SQL=1 (scripts/setup.sh installs it)",
                    pytrace=False)
    pytest.skip(f"{what} missing (scripts/setup.sh installs it)", allow_module_level=True)


def require_pg() -> None:
    """Skips or fails the calling test when PostgreSQL 15 is not installed."""
    if not (PG_BIN / "initdb").exists():
        _missing(f"PostgreSQL 15 ({PG_BIN}) is")


def require_mariadb() -> None:
    """Skips or fails the calling test when MariaDB is not installed."""
    if not MARIADBD.exists():
        _missing(f"MariaDB ({MARIADBD}) is")


def require_module(name: str, wheel: str) -> ModuleType:
    """The module `name` (from the `wheel` package); skips or fails the
    calling test (or module, at collection) when it does not import."""
    try:
        return importlib.import_module(name)
    except ImportError:
        _missing(f"the {wheel} wheel ({name}) is")
        raise
