"""The CLI's configuration: the original ``~/.immconfig`` file, environment variables and flags.

The file stays what the original bash ``imm`` and ``model_upload_cli.py`` read: one flat JSON object
holding the token fields (``id_token``, ``refresh_token``, ``expires_at``, ...) beside
``management_api_address``, ``management_api_port``, ``ca_cert_path`` (and ``proxy_host``,
``proxy_port``). The keys this CLI adds (``management_api_scheme``, ``login``, ``token_endpoint``,
``oidc_*``) are ignored by the old tools. Unlike the original, the file is always written with mode
0600 (it holds tokens), atomically, so a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CONFIG_ENV = "IMM_CONFIG_PATH"
DEFAULT_CONFIG = "~/.immconfig"
DEFAULT_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 443
DEFAULT_SCHEME = "https"

#: What a login writes and a logout removes.
TOKEN_KEYS = (
    "id_token",
    "access_token",
    "refresh_token",
    "expires_at",
    "expires_in",
    "token_type",
    "scope",
    "login",
    "token_endpoint",
    "oidc_client_id",
)


class ConfigError(Exception):
    """The configuration file cannot be read or written (the message names the file)."""


def config_path(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Path:
    """``-c PATH`` wins, then ``IMM_CONFIG_PATH``, then ``~/.immconfig`` (as the original)."""
    env = os.environ if env is None else env
    raw = explicit or env.get(CONFIG_ENV) or DEFAULT_CONFIG
    return Path(raw).expanduser()


def load(path: Path) -> dict[str, Any]:
    """The config object; a missing or empty file is an empty config (the user has not logged in)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); fix it or run `imm login` again") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return data


def save(path: Path, data: Mapping[str, Any]) -> None:
    """Write atomically with mode 0600: a temporary file beside the target, then ``os.replace``.

    The temporary file is created 0600 (mkstemp), so the tokens are never readable by others, not
    even for a moment; the final chmod also repairs a file an older tool left world-readable.
    """
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(dict(data), handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
    os.chmod(path, 0o600)


def without_tokens(data: Mapping[str, Any]) -> dict[str, Any]:
    """What ``imm logout`` keeps: where the API is and how to trust it, never a credential."""
    return {key: value for key, value in data.items() if key not in TOKEN_KEYS}


@dataclass(frozen=True)
class Connection:
    """Where the API is, how to trust it, and which token to send."""

    base_url: str
    verify: bool | str
    token: str | None
    token_from_env: bool
    proxy: str | None = None


def _port(value: Any, source: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {value!r} is not a port number") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{source}: {port} is not a port number")
    return port


def base_url(
    config: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    api_url: str | None = None,
    address: str | None = None,
    port: int | None = None,
) -> str:
    """The API's base URL, without a trailing slash.

    ``--api-url`` and ``IMM_API_URL`` give scheme, host, port (and a path prefix) at once. Otherwise,
    as in the original: address and port from the flags, then ``MANAGEMENT_API_ADDRESS`` /
    ``MANAGEMENT_API_PORT``, then the config file, then ``127.0.0.1:443``; the scheme is https unless
    the config says otherwise (``management_api_scheme``, written by a login made with an http URL).
    """
    url = api_url or env.get("IMM_API_URL")
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"IMM_API_URL/--api-url: {url!r} is not an http(s) URL")
        return url.rstrip("/")
    host = address or env.get("MANAGEMENT_API_ADDRESS") or config.get("management_api_address") or DEFAULT_ADDRESS
    if port is not None:
        number = _port(port, "-p/--port")
    elif env.get("MANAGEMENT_API_PORT"):
        number = _port(env["MANAGEMENT_API_PORT"], "MANAGEMENT_API_PORT")
    elif config.get("management_api_port") not in (None, ""):
        number = _port(config["management_api_port"], "management_api_port")
    else:
        number = DEFAULT_PORT
    scheme = config.get("management_api_scheme") or DEFAULT_SCHEME
    if ":" in str(host) and not str(host).startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"{scheme}://{host}:{number}"


def split_base_url(url: str) -> dict[str, Any]:
    """The config keys that store a base URL in the original's terms (address, port) plus the scheme."""
    parts = urlsplit(url)
    scheme = parts.scheme or DEFAULT_SCHEME
    port = parts.port or (443 if scheme == "https" else 80)
    stored: dict[str, Any] = {"management_api_address": parts.hostname, "management_api_port": port}
    stored["management_api_scheme"] = scheme
    return stored


def resolve(
    config: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    *,
    api_url: str | None = None,
    address: str | None = None,
    port: int | None = None,
    ca_cert: str | None = None,
    insecure: bool = False,
) -> Connection:
    """Everything a request needs, from flags, then environment, then the config file.

    ``IMM_TOKEN`` wins over the config file's token (the original did the reverse, which made it
    impossible to act as someone else for one command without logging out).
    """
    env = os.environ if env is None else env
    url = base_url(config, env, api_url=api_url, address=address, port=port)
    verify: bool | str
    if insecure:
        verify = False
    else:
        ca = ca_cert or env.get("MANAGEMENT_CA_CERT_PATH") or config.get("ca_cert_path")
        if ca:
            ca_path = Path(str(ca)).expanduser()
            if not ca_path.is_file():
                raise ConfigError(f"CA certificate {ca_path} does not exist")
            verify = str(ca_path)
        else:
            verify = True
    env_token = env.get("IMM_TOKEN")
    token = env_token or config.get("id_token") or None
    proxy = None
    if config.get("proxy_host"):
        proxy_port = f":{config['proxy_port']}" if config.get("proxy_port") else ""
        proxy = f"http://{config['proxy_host']}{proxy_port}"
    return Connection(base_url=url, verify=verify, token=token, token_from_env=bool(env_token), proxy=proxy)
