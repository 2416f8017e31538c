"""PostgreSQL for the devstack, from Debian's postgresql package.

The product runs on SQLite by default and on PostgreSQL when DATABASE_URL says so; CI runs the
suite on both, so the devstack offers a PostgreSQL server on loopback. PostgreSQL refuses to run as
root, so when the devstack runs as root (CI machines) the server runs as the `postgres` user the
Debian package creates, on a data directory it owns.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
from pathlib import Path

from devstack.layout import CONF, DATA, PORTS, STATE
from devstack.proc import Part, StackError, alive, say

USER = "imm"
DATABASE = "imm"
DATA_ROOTS = Path("/var/lib/imm-devstack")  # as root: one directory per checkout's state dir
# Each data root records the state dir it serves, so that a root whose checkout is gone can be found.
OWNER_RECORD = "state-dir"


def data_root() -> Path:
    """Where the server's files live.

    As root the server runs as `postgres`, which may not be able to enter the checkout (a clone
    under /root, say), so its files go to a directory of its own, one per devstack state dir.
    """
    if os.geteuid() != 0:
        return DATA
    key = hashlib.sha256(str(STATE.resolve()).encode()).hexdigest()[:12]
    return DATA_ROOTS / key


def wipe() -> None:
    """Part of `make devstack-clean`: the files outside the state dir, and those of deleted checkouts."""
    if os.geteuid() == 0:
        shutil.rmtree(data_root(), ignore_errors=True)
        for orphan in orphaned_data_roots(DATA_ROOTS):
            shutil.rmtree(orphan, ignore_errors=True)
            say(f"postgres: removed {orphan} (its checkout's state dir is gone)")


def orphaned_data_roots(parent: Path) -> list[Path]:
    """Data roots under ``parent`` whose recorded state dir no longer exists and whose server is stopped.

    A checkout deleted without `make devstack-clean` (a CI clone, a worktree) leaves its database
    behind; only its own `clean` would have removed it. A root without the record (made before it
    existed) is kept: whose it is cannot be known.
    """
    found = []
    for root in sorted(parent.glob("*/")) if parent.is_dir() else []:
        record = root / OWNER_RECORD
        if not record.is_file() or Path(record.read_text().strip()).exists():
            continue
        if _server_running(root / "postgres"):
            continue
        found.append(root)
    return found


def _server_running(data: Path) -> bool:
    """Whether the PID in ``postmaster.pid`` is alive (a server whose checkout was deleted under it)."""
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return alive(pid)


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise StackError(f"postgres: {name} not found (Debian package postgresql)")
    return found[-1]


def _as_owner() -> list[str]:
    """Prefix that runs a command as the server's owner (postgres when we are root)."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def password() -> str:
    path = CONF / "postgres-password"
    if not path.exists():
        CONF.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def url() -> str:
    return f"postgres://{USER}:{password()}@127.0.0.1:{PORTS.postgres}/{DATABASE}"


def _own(*paths: Path) -> None:
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        for path in paths:
            os.chown(path, owner.pw_uid, owner.pw_gid)


def _init(data: Path) -> None:
    """initdb once: a superuser `imm` (the test runner creates and drops its test database)."""
    if (data / "PG_VERSION").exists():
        return
    say(f"postgres: initialising {data}")
    data.mkdir(parents=True, exist_ok=True)
    data.parent.chmod(0o755)
    pwfile = data.parent / "postgres-pwfile"
    pwfile.write_text(password())
    _own(data, pwfile)
    result = subprocess.run(
        [*_as_owner(), _bin("initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}",
         "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--no-instructions"],
        capture_output=True, text=True,
    )  # fmt: skip
    pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        raise StackError(f"postgres: initdb failed: {result.stderr.strip()[-800:]}")


def _ready() -> bool:
    with socket.create_connection(("127.0.0.1", PORTS.postgres), timeout=2):
        pass
    result = subprocess.run(
        [_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(PORTS.postgres), "-U", USER, "-d", "postgres"],
        capture_output=True,
    )
    return result.returncode == 0


def ensure_database() -> None:
    """Create the `imm` database (for `make dev` with PostgreSQL) if it is missing."""
    env = {**os.environ, "PGPASSWORD": password()}
    base = [_bin("psql"), "-h", "127.0.0.1", "-p", str(PORTS.postgres), "-U", USER, "-d", "postgres", "-tAc"]
    query = "SELECT 1 FROM pg_database WHERE datname = 'imm'"  # DATABASE, a constant
    found = subprocess.run([*base, query], capture_output=True, text=True, env=env)
    if found.returncode != 0:
        raise StackError(f"postgres: cannot query the server: {found.stderr.strip()}")
    if found.stdout.strip() != "1":
        subprocess.run([*base, f"CREATE DATABASE {DATABASE}"], check=True, capture_output=True, env=env)


def part() -> Part:
    data = data_root() / "postgres"
    _init(data)
    if os.geteuid() == 0:  # outside the state dir: say whose it is (orphaned_data_roots)
        (data_root() / OWNER_RECORD).write_text(f"{STATE.resolve()}\n")
    sockets = data_root() / "postgres-run"
    sockets.mkdir(parents=True, exist_ok=True)
    _own(sockets)
    return Part(
        "postgres",
        [*_as_owner(), _bin("postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(PORTS.postgres),
         "-k", str(sockets), "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
        ready=_ready,
        ports=(PORTS.postgres,),
    )  # fmt: skip
