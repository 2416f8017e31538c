"""The unit tests' ``fake`` fixture: every command talks to a recorder instead of an API."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from cli_fakes import Recorder

from imm_cli import auth, main
from imm_cli import config as cfg
from imm_cli.http import Api


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Recorder:
    """Every command talks to the recorder; the config file lives in tmp_path with a token."""
    recorder = Recorder()
    config_file = tmp_path / "immconfig"
    cfg.save(config_file, {"id_token": "a.b.c", "management_api_address": "api.test", "management_api_port": 443})
    for name in ("IMM_TOKEN", "IMM_API_URL", "CERT", "TENANT_RESOURCES", "ENDPOINT_RESOURCES", "DEFAULT_TENANT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IMM_CONFIG_PATH", str(config_file))

    def api(self: main.State) -> Api:
        if self._api is None:
            self._api = Api(
                self.connection(), self.store(), refresher=auth.refresh, transport=httpx.MockTransport(recorder)
            )
        return self._api

    monkeypatch.setattr(main.State, "api", api)
    return recorder
