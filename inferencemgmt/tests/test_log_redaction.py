"""Every process's logs go through one redaction (issue 17, finding 8).

The development server's access log printed the OIDC callback's query string (the authorization
code). Redaction now happens when a record is made (a log record factory installed by Django's
``LOGGING_CONFIG``), so it holds for every logger and handler of every Django process: the access
logs of runserver and gunicorn (proved here on the real servers), Celery's worker and beat, and
``manage.py`` commands such as the controller.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from inferencemgmt.requestlog import LOG_MESSAGE_MAX, LOG_TRACEBACK_MAX, _RedactingFactory, redact

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
CALLBACK = "/oidc/callback/?code=SECRET-CODE-4711&state=STATE-0815"


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ('"GET /oidc/callback/?code=SECRET-CODE-4711&state=STATE-0815 HTTP/1.1" 302 0', "/oidc/callback/?code="),
        ("GET /x?access_token=SECRET-CODE-4711&limit=5", "limit=5"),
        ("GET /x?limit=5&id_token=SECRET-CODE-4711", "limit=5"),
        ("PUT /b/k?partNumber=3&X-Amz-Signature=SECRET-CODE-4711&X-Amz-Credential=STATE-0815", "partNumber=3"),
        ("fetching https://user:SECRET-CODE-4711@example.com/model.onnx", "https://user:[redacted]@example.com/"),
        ("POST /token?client_secret=SECRET-CODE-4711;password=STATE-0815", "/token?client_secret="),
        ("Authorization: Bearer SECRET-CODE-4711", "Bearer [redacted]"),
    ],
)
def test_secrets_in_urls_and_headers_are_masked(line, kept):
    clean = redact(line)
    assert "SECRET-CODE-4711" not in clean
    assert "STATE-0815" not in clean
    assert kept in clean


def test_ordinary_query_parameters_are_kept():
    line = "GET /tenants/t/models/upload?partNumber=2&uploadId=abc&key=resnet/1/a.pb&limit=200"
    assert redact(line) == line


@pytest.fixture
def output() -> tuple[io.StringIO, logging.Handler]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # a bare handler: no filter of ours
    return stream, handler


@pytest.mark.parametrize("name", ["django.server", "gunicorn.access", "celery.worker", "celery.beat", "servings"])
def test_every_logger_of_the_process_is_redacted_whatever_its_handler(output, name):
    assert isinstance(logging.getLogRecordFactory(), _RedactingFactory)  # installed by django.setup()
    stream, handler = output
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        logger.warning('"GET %s HTTP/1.1" %s', CALLBACK, 302)
    finally:
        logger.removeHandler(handler)
    assert "/oidc/callback/?code=[redacted]&state=[redacted]" in stream.getvalue()
    assert "SECRET-CODE-4711" not in stream.getvalue()


def test_a_huge_message_and_traceback_are_cut_and_redacted(output):
    stream, handler = output
    logger = logging.getLogger("servings.controller")
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError("Bearer SECRET-CODE-4711 " + "n" * 1_000_000)
        except RuntimeError:
            logger.exception("failed on %s", "x" * 1_000_000)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "SECRET-CODE-4711" not in text
    assert "more characters cut" in text
    assert len(text) < LOG_MESSAGE_MAX + LOG_TRACEBACK_MAX + 1000


# --- the real servers ------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _environment(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "inferencemgmt.settings",
        "DJANGO_SECRET_KEY": "test-only-log-redaction",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "PYTHONUNBUFFERED": "1",
    }


def _serve_and_call(command: list[str], env: dict[str, str], port: int, log: Path) -> str:
    """Start the server, GET the callback with a code until it answers, stop it; its whole log."""
    with log.open("w") as sink:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                request = urllib.request.Request(f"http://127.0.0.1:{port}{CALLBACK}", headers={"Host": "localhost"})
                try:
                    with urllib.request.urlopen(request, timeout=5):  # noqa: S310 -- a fixed loopback URL
                        pass
                    break
                except urllib.error.HTTPError:
                    break  # any answer: the request was served, so it was logged
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)
            time.sleep(1.0)  # the access line is written after the response
        finally:
            process.terminate()
            process.wait(timeout=30)
    return log.read_text()


def _assert_access_line_redacted(text: str) -> None:
    lines = [line for line in text.splitlines() if "/oidc/callback/" in line]
    assert lines, f"no access line was logged:\n{text[-3000:]}"
    assert all("code=[redacted]" in line and "state=[redacted]" in line for line in lines), lines
    assert "SECRET-CODE-4711" not in text
    assert "STATE-0815" not in text


def test_runserver_access_log_does_not_show_the_authorization_code(tmp_path):
    port = _free_port()
    command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    _assert_access_line_redacted(_serve_and_call(command, _environment(tmp_path), port, tmp_path / "runserver.log"))


def _image_gunicorn_args() -> str:
    dockerfile = (ROOT / "Dockerfile").read_text()
    start = dockerfile.index('GUNICORN_CMD_ARGS="') + len('GUNICORN_CMD_ARGS="')
    return dockerfile[start : dockerfile.index('"', start)]


def test_gunicorn_access_log_does_not_show_the_authorization_code(tmp_path):
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        pytest.skip("gunicorn is not installed in this virtualenv (requirements/prod.txt)")
    port = _free_port()
    args = _image_gunicorn_args()
    assert "--access-logfile=-" in args  # the image does log every request
    env = {
        **_environment(tmp_path),
        "GUNICORN_CMD_ARGS": args.replace("0.0.0.0:8000", f"127.0.0.1:{port}").replace("--workers=2", "--workers=1"),
    }
    command = [str(gunicorn), "inferencemgmt.wsgi:application"]
    _assert_access_line_redacted(_serve_and_call(command, env, port, tmp_path / "gunicorn.log"))


def test_celery_and_manage_py_commands_redact_through_their_own_logging(tmp_path):
    """What ``celery worker``/``celery beat`` do at start (load the task modules: the Django fixup runs
    ``django.setup()``; then Celery's own logging setup), and a ``manage.py`` command logging as the
    controller does (``logging.basicConfig``): a callback URL logged afterwards is redacted."""
    celery = (
        "import logging\n"
        "from inferencemgmt.celery import app\n"
        "app.loader.import_default_modules()\n"
        "app.log.setup(loglevel='INFO')\n"
        f"logging.getLogger('celery.beat').warning('GET {CALLBACK}')\n"
    )
    controller = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s', stream=sys.stderr)\n"
        f"logging.getLogger('servings.controller').warning('GET {CALLBACK}')\n"
    )
    env = _environment(tmp_path)
    for command in ([sys.executable, "-c", celery], [sys.executable, "manage.py", "shell", "-c", controller]):
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
        _assert_access_line_redacted(done.stdout + done.stderr)
