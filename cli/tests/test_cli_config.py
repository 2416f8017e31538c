"""Config file handling: the original's keys and precedence, and owner-only permissions."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from imm_cli import config as cfg

pytestmark = pytest.mark.unit


def test_path_precedence_flag_then_env_then_home() -> None:
    assert cfg.config_path("/x/flag", {"IMM_CONFIG_PATH": "/x/env"}) == Path("/x/flag")
    assert cfg.config_path(None, {"IMM_CONFIG_PATH": "/x/env"}) == Path("/x/env")
    assert cfg.config_path(None, {}) == Path("~/.immconfig").expanduser()


def test_missing_and_empty_files_are_an_empty_config(tmp_path: Path) -> None:
    assert cfg.load(tmp_path / "absent") == {}
    (tmp_path / "empty").write_text("\n")
    assert cfg.load(tmp_path / "empty") == {}


def test_a_broken_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "broken"
    path.write_text("{not json")
    with pytest.raises(cfg.ConfigError, match="broken is not valid JSON"):
        cfg.load(path)
    path.write_text("[1, 2]")
    with pytest.raises(cfg.ConfigError, match="JSON object"):
        cfg.load(path)


def test_save_is_0600_even_over_a_world_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / ".immconfig"
    path.parent.mkdir()
    path.write_text("{}")
    path.chmod(0o644)
    cfg.save(path, {"id_token": "secret", "management_api_port": 443})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"id_token": "secret", "management_api_port": 443}
    assert [p.name for p in path.parent.iterdir()] == [".immconfig"]  # no temporary file left


def test_original_keys_make_the_url() -> None:
    config = {"management_api_address": "mgmt.example.com", "management_api_port": 8443}
    assert cfg.base_url(config, {}) == "https://mgmt.example.com:8443"
    assert cfg.base_url({}, {}) == "https://127.0.0.1:443"
    assert cfg.base_url(config | {"management_api_scheme": "http"}, {}) == "http://mgmt.example.com:8443"


def test_flags_beat_env_beat_config() -> None:
    config = {"management_api_address": "from-config", "management_api_port": 1}
    env = {"MANAGEMENT_API_ADDRESS": "from-env", "MANAGEMENT_API_PORT": "2"}
    assert cfg.base_url(config, env) == "https://from-env:2"
    assert cfg.base_url(config, env, address="from-flag", port=3) == "https://from-flag:3"


def test_imm_api_url_overrides_address_port_and_scheme() -> None:
    config = {"management_api_address": "ignored", "management_api_port": 443}
    assert cfg.base_url(config, {"IMM_API_URL": "http://127.0.0.1:8000/"}) == "http://127.0.0.1:8000"
    assert cfg.base_url(config, {"IMM_API_URL": "http://a:1"}, api_url="https://b/prefix") == "https://b/prefix"
    with pytest.raises(cfg.ConfigError):
        cfg.base_url({}, {"IMM_API_URL": "ftp://x"})


def test_bad_ports_are_refused() -> None:
    with pytest.raises(cfg.ConfigError, match="MANAGEMENT_API_PORT"):
        cfg.base_url({}, {"MANAGEMENT_API_PORT": "https"})
    with pytest.raises(cfg.ConfigError):
        cfg.base_url({"management_api_port": 70000}, {})


def test_split_base_url_round_trips() -> None:
    stored = cfg.split_base_url("http://127.0.0.1:8000")
    assert stored == {
        "management_api_address": "127.0.0.1",
        "management_api_port": 8000,
        "management_api_scheme": "http",
    }
    assert cfg.base_url(stored, {}) == "http://127.0.0.1:8000"
    assert cfg.split_base_url("https://api.example.com")["management_api_port"] == 443


def test_imm_token_wins_over_the_config_token() -> None:
    config = {"id_token": "from-config"}
    assert cfg.resolve(config, {}).token == "from-config"
    resolved = cfg.resolve(config, {"IMM_TOKEN": "from-env"})
    assert resolved.token == "from-env"
    assert resolved.token_from_env


def test_trust_settings(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("pem")
    assert cfg.resolve({"ca_cert_path": str(ca)}, {}).verify == str(ca)
    assert cfg.resolve({"ca_cert_path": str(ca)}, {}, insecure=True).verify is False
    assert cfg.resolve({}, {"MANAGEMENT_CA_CERT_PATH": str(ca)}).verify == str(ca)
    assert cfg.resolve({}, {}).verify is True
    with pytest.raises(cfg.ConfigError, match="does not exist"):
        cfg.resolve({"ca_cert_path": str(tmp_path / "missing")}, {})


def test_proxy_from_the_original_keys() -> None:
    assert cfg.resolve({"proxy_host": "proxy", "proxy_port": 3128}, {}).proxy == "http://proxy:3128"
    assert cfg.resolve({}, {}).proxy is None


def test_logout_keeps_connection_keys_only() -> None:
    data = {
        "id_token": "t",
        "refresh_token": "r",
        "expires_at": 1,
        "login": "password",
        "management_api_address": "a",
        "management_api_port": 1,
        "ca_cert_path": "/ca",
    }
    assert cfg.without_tokens(data) == {"management_api_address": "a", "management_api_port": 1, "ca_cert_path": "/ca"}
