"""The devstack's PostgreSQL data of deleted checkouts is found (and only that)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.database import OWNER_RECORD, orphaned_data_roots

pytestmark = pytest.mark.unit


def data_root(parent: Path, name: str, owner: Path | None, server_pid: int | None = None) -> Path:
    root = parent / name
    (root / "postgres").mkdir(parents=True)
    if owner is not None:
        (root / OWNER_RECORD).write_text(f"{owner}\n")
    if server_pid is not None:
        (root / "postgres" / "postmaster.pid").write_text(f"{server_pid}\n/var/lib/data\n")
    return root


def gone_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_the_data_of_a_deleted_checkout_with_no_server_is_orphaned(tmp_path: Path) -> None:
    live_checkout = tmp_path / "checkout" / ".devstack"
    live_checkout.mkdir(parents=True)
    deleted = tmp_path / "deleted-clone" / ".devstack"
    roots = tmp_path / "roots"
    orphan = data_root(roots, "aaa", deleted)
    orphan_whose_server_exited = data_root(roots, "bbb", deleted, server_pid=gone_pid())
    data_root(roots, "ccc", live_checkout)  # its checkout exists
    data_root(roots, "ddd", None)  # made before the record: whose it is is unknown
    data_root(roots, "eee", deleted, server_pid=os.getpid())  # a server still runs on it

    assert orphaned_data_roots(roots) == [orphan, orphan_whose_server_exited]


def test_no_data_roots_at_all_is_no_orphan(tmp_path: Path) -> None:
    assert orphaned_data_roots(tmp_path / "missing") == []
