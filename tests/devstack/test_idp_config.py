"""The identity provider's generated configuration, without starting anything."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from devstack import idp, pki

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idp, "CONF", tmp_path / "conf")
    monkeypatch.setattr(idp, "LDAP_CONF", tmp_path / "conf" / "ldap")
    monkeypatch.setattr(idp, "LDAP_DATA", tmp_path / "data" / "ldap")
    monkeypatch.setattr(idp, "DEX_DATA", tmp_path / "data" / "dex")
    monkeypatch.setattr(pki, "PKI", tmp_path / "pki")


def entries(ldif: str) -> dict[str, dict[str, list[str]]]:
    parsed: dict[str, dict[str, list[str]]] = {}
    for block in ldif.split("\n\n"):
        lines = [line for line in block.splitlines() if line and not line.startswith("#")]
        if not lines:
            continue
        attrs: dict[str, list[str]] = {}
        for line in lines:
            key, _, value = line.partition(": ")
            attrs.setdefault(key, []).append(value)
        parsed[attrs["dn"][0]] = attrs
    return parsed


def ssha_matches(stored: str, password: str) -> bool:
    raw = base64.b64decode(stored.removeprefix("{SSHA}"))
    digest, salt = raw[:20], raw[20:]
    return hashlib.sha1(password.encode() + salt).digest() == digest  # noqa: S324 (slapd's {SSHA} scheme)


def test_seed_matches_the_documented_users_and_groups() -> None:
    seed = entries(idp.SEED.read_text())
    for user, groups in idp.DEMO_USERS.items():
        dn = f"uid={user},ou=people,{idp.BASE_DN}"
        assert seed[dn]["mail"] == [f"{user}@example.com"]
        member_of = sorted(
            attrs["cn"][0]
            for attrs in seed.values()
            if "groupOfNames" in attrs["objectClass"] and dn in attrs["member"]
        )
        assert member_of == sorted(groups)


def test_loaded_directory_holds_only_hashed_passwords() -> None:
    loaded = entries(idp._seed_ldif())
    for user in idp.DEMO_USERS:
        stored = loaded[f"uid={user},ou=people,{idp.BASE_DN}"]["userPassword"][0]
        assert stored.startswith("{SSHA}")
        assert ssha_matches(stored, idp.demo_password(user))
        assert not ssha_matches(stored, "wrong")
    service = loaded[idp.DEX_BIND_DN]["userPassword"][0]
    assert ssha_matches(service, idp.secrets_file()["ldap_dex_password"])


def test_dex_clients_and_grants() -> None:
    config = idp.dex_config()
    assert config["issuer"] == idp.ISSUER
    assert idp.ISSUER.startswith("https://127.0.0.1:")
    assert config["oauth2"]["passwordConnector"] == "ldap"
    assert config["oauth2"]["skipApprovalScreen"] is True
    assert "password" in config["oauth2"]["grantTypes"]
    clients = {client["id"]: client for client in config["staticClients"]}
    api, cli = clients[idp.API_CLIENT_ID], clients[idp.CLI_CLIENT_ID]
    assert len(api["secret"]) >= 32
    assert not api.get("public")
    assert api["trustedPeers"] == [idp.CLI_CLIENT_ID]
    assert cli["public"] is True
    assert "secret" not in cli
    assert "http://127.0.0.1:5555/callback" in cli["redirectURIs"]
    assert "http://127.0.0.1:8000/oidc/callback/" in api["redirectURIs"]
    assert [c["id"] for c in config["connectors"]] == ["ldap"]
    assert config["storage"]["type"] == "sqlite3"


def test_secrets_are_made_once_and_private(tmp_path: Path) -> None:
    first = idp.secrets_file()
    assert idp.secrets_file() == first
    assert (tmp_path / "conf" / "idp-secrets.json").stat().st_mode & 0o077 == 0


def test_kube_apiserver_flags() -> None:
    flags = idp.apiserver_flags()
    assert f"--oidc-issuer-url={idp.ISSUER}" in flags
    assert "--oidc-client-id=imm-api" in flags
    assert "--oidc-username-claim=email" in flags
    assert "--oidc-groups-claim=groups" in flags
    assert any(flag.startswith("--oidc-ca-file=") for flag in flags)
