"""gunicorn settings read from the working directory (the image's /app, `make dev`'s checkout).

Only what the metrics need: gunicorn runs several worker processes, and prometheus-client's
multiprocess mode sums their values at scrape time from files in ``PROMETHEUS_MULTIPROC_DIR``. The
directory must be set before a worker imports the library, and emptied at each server start (files
of a previous server's workers would be counted again). Everything else stays in GUNICORN_CMD_ARGS.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any


def _fresh_multiprocess_dir() -> str:
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if given:
        os.makedirs(given, exist_ok=True)
        for entry in os.listdir(given):
            path = os.path.join(given, entry)
            if os.path.isfile(path) and entry.endswith(".db"):
                os.remove(path)
        return given
    made = tempfile.mkdtemp(prefix="imm-prometheus-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    return made


_multiprocess_dir = _fresh_multiprocess_dir()


def child_exit(server: Any, worker: Any) -> None:
    """A worker ended: its live gauges (requests in flight) stop counting; its counters stay."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    if _multiprocess_dir.startswith(tempfile.gettempdir() + os.sep + "imm-prometheus-"):
        shutil.rmtree(_multiprocess_dir, ignore_errors=True)
