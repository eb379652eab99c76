"""sql_servers.py — the `pg` and `my` fixtures of the SQL test modules: the
URL of a database of the module's own, on a real PostgreSQL 15 or MariaDB.

Under scripts/test.sh one server of each serves the whole session
(tests/sql_servers.sh exports PT_TEST_PG_URL and PT_TEST_MYSQL_URL): the
fixture makes a database pt_<module>_<pid> there and drops it at the end, so
that no module sees another's tables. Without the variable it starts a
server of its own for the module, as when a module is run alone: a temporary
directory, a free port, the postgres user when run as root (initdb refuses
root), MariaDB as root with --user=root.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from urllib.parse import urlsplit

import pytest

from sql_require import PG_BIN, require_mariadb, require_pg


def _as_postgres(cmd: list[str]) -> None:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_db(url: str, db: str) -> str:
    """url naming database db instead of its own."""
    return url.rsplit("/", 1)[0] + "/" + db


def _own_db(request) -> str:
    return f"pt_{request.module.__name__.removeprefix('test_')}_{os.getpid()}"


def psql(url: str, sql: str) -> str:
    return subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-Atc", sql], check=True,
                          capture_output=True, text=True).stdout.strip()


def mariadb(url: str, sql: str) -> str:
    """sql run as the URL's user (root) on its database; tab-separated rows."""
    u = urlsplit(url)
    return subprocess.run(["mariadb", "-h", u.hostname, "-P", str(u.port), "-uroot", "-N", "-B",
                           u.path.lstrip("/"), "-e", sql], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture(scope="module")
def pg(request):
    require_pg()
    shared = os.environ.get("PT_TEST_PG_URL")
    if shared:
        db = _own_db(request)
        psql(shared, f'CREATE DATABASE "{db}"')
        try:
            yield with_db(shared, db)
        finally:
            # FORCE: an executor's backend may outlive its process briefly.
            psql(shared, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        return
    d = tempfile.mkdtemp(prefix="pt-pg-py.")
    if os.geteuid() == 0:
        shutil.chown(d, "postgres", "postgres")
    _as_postgres([str(PG_BIN / "initdb"), "-D", f"{d}/data", "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--locale=C.UTF-8"])
    port = _free_port()
    _as_postgres([str(PG_BIN / "pg_ctl"), "-D", f"{d}/data", "-l", f"{d}/log", "-w", "-o",
                  f"-k {d} -h 127.0.0.1 -p {port}", "start"])
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", f"{d}/data", "-m", "fast", "stop"])
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def my(request):
    """mysql://root@127.0.0.1:PORT/DB, DB empty."""
    require_mariadb()
    shared = os.environ.get("PT_TEST_MYSQL_URL")
    if shared:
        db = _own_db(request)
        mariadb(shared, f"CREATE DATABASE `{db}`")
        try:
            yield with_db(shared, db)
        finally:
            mariadb(shared, f"DROP DATABASE IF EXISTS `{db}`")
        return
    d = tempfile.mkdtemp(prefix="pt-my-py.")
    subprocess.run(["mariadb-install-db", f"--datadir={d}/db",
                    "--auth-root-authentication-method=normal", "--skip-test-db"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = _free_port()
    server = subprocess.Popen(["mariadbd", f"--datadir={d}/db", f"--socket={d}/sock",
                               f"--port={port}", "--bind-address=127.0.0.1", "--user=root",
                               f"--pid-file={d}/pid", f"--log-error={d}/err.log"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            if subprocess.run(["mariadb", "-h", "127.0.0.1", "-P", str(port), "-uroot", "-e",
                               "CREATE DATABASE pt"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail("MariaDB did not start")
        yield f"mysql://root@127.0.0.1:{port}/pt"
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(d, ignore_errors=True)
