"""`imm login` in the browser: the CLI's loopback callback, driven through Dex's real login form.

A person would click through the provider's page; here an HTTP client fills the same form (Dex's
LDAP connector) and follows the redirects, the last of which lands on the CLI's callback server on
127.0.0.1:5555, exactly where a browser would take the code.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import ROOT, Server

pytestmark = pytest.mark.integration


def browser_login(server: Server, config: Path, user: str, *flags: str) -> tuple[int, str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMM_")}
    env.update({"IMM_API_URL": server.url, "IMM_CONFIG_PATH": str(config)})
    process = subprocess.Popen(
        [sys.executable, "-m", "imm_cli", "login", "--no-browser", "--timeout", "60", *flags],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stderr is not None
    seen = []
    url = None
    try:
        while url is None:
            line = process.stderr.readline()
            if not line:
                break
            seen.append(line)
            found = re.search(r"(https://\S+/auth\?\S+)", line)
            url = found.group(1) if found else None
        assert url, "".join(seen)
        trust = ssl.create_default_context(cafile=server.env["OIDC_CA_FILE"])
        with httpx.Client(verify=trust, follow_redirects=True, timeout=20) as browser:
            page = browser.get(url)
            action = re.search(r'<form[^>]*action="([^"]*)"', page.text)
            assert action, page.text[:500]
            target = page.url.join(action.group(1).replace("&amp;", "&"))
            landed = browser.post(target, data={"login": user, "password": f"{user}-password"})
        assert landed.url.host == "127.0.0.1"
        assert landed.url.port == 5555
        assert "Login complete" in landed.text
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, out, "".join(seen) + err


def test_browser_login_with_pkce(cli_server: Server, tmp_path: Path) -> None:
    config = tmp_path / "immconfig"
    code, _out, err = browser_login(cli_server, config, "carol")
    if code != 0 and "does not pass the PKCE verifier" in err:
        pytest.xfail("the API's POST /authenticate/token does not pass code_verifier on yet (see docs/cli.md)")
    assert code == 0, err
    assert "code_challenge_method=S256" in err
    assert "Logged in as carol@example.com" in err
    saved = json.loads(config.read_text())
    assert saved["login"] == "browser"
    assert saved["refresh_token"]


def test_browser_login_without_pkce_for_older_servers(cli_server: Server, tmp_path: Path) -> None:
    config = tmp_path / "immconfig"
    code, out, err = browser_login(cli_server, config, "alice", "--no-pkce", "--print-token")
    assert code == 0, err
    assert "code_challenge" not in err
    saved = json.loads(config.read_text())
    assert out.strip() == saved["id_token"]  # --print-token: the one way the token reaches stdout
    assert saved["login"] == "browser"
    # The browser login's refresh goes through the API (POST /authenticate/token, refresh_token).
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMM_")}
    env.update({"IMM_API_URL": cli_server.url, "IMM_CONFIG_PATH": str(config)})
    saved["id_token"] = "not.a.token"
    config.write_text(json.dumps(saved))
    listed = subprocess.run(
        [sys.executable, "-m", "imm_cli", "ls", "s"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(config.read_text())["id_token"] != "not.a.token"
