"""The console in a real browser against the live platform, as the issue's people use it.

The admin signs in through Dex, creates a tenant for team-a and watches its task finish; alice (team-a)
finds it on her dashboard; bob (team-b) sees nothing of it; the admin deletes it with a confirmation.
Every page is screenshotted, and checked for what a person would look at: the title, the key elements,
no error banner, and no Content-Security-Policy violation in the browser console.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from tests.certificates import ca_certificate_pem

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

TASK_TIMEOUT_MS = 180_000
ENDPOINT_TIMEOUT_MS = 180_000  # kwok's stages on a loaded 2-core machine


class Person:
    """One user's browser context: signs in through Dex and remembers CSP violations and dialogs."""

    def __init__(self, browser: Any, base_url: str, issuer: str, user: str) -> None:
        self.context = browser.new_context(base_url=base_url, viewport={"width": 1366, "height": 800})
        self.page = self.context.new_page()
        self.issuer, self.user = issuer, user
        self.csp_violations: list[str] = []
        self.page.on(
            "console",
            lambda message: (
                self.csp_violations.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        self.page.on("dialog", lambda dialog: dialog.accept())

    def log_in(self) -> None:
        page = self.page
        page.goto("/console/")  # not signed in: sent to the provider, then back here
        page.wait_for_url(f"{self.issuer}/auth/ldap/login*", timeout=30_000)
        page.fill("#login", self.user)
        page.fill("#password", f"{self.user}-password")
        page.click("#submit-login")
        page.wait_for_url("**/console/", timeout=30_000)
        assert page.locator("#user-name").inner_text() == f"{self.user}@example.com"

    def open(self, path: str) -> Any:
        response = self.page.goto(path)
        assert response is not None
        return response

    def assert_no_error_banner(self) -> None:
        """What a reader checks (no error shown), plus what they cannot: no CSP violation, no token."""
        assert self.page.locator(".banner.error").count() == 0, self.page.locator(".banner.error").all_inner_texts()
        assert self.csp_violations == []
        assert "eyJ" not in self.page.content()  # every JWT starts with the base64 of '{"'

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def people(browser: Any, console_server: str, devstack_env: dict[str, str]) -> Iterator[Callable[[str], Person]]:
    made: list[Person] = []

    def person(user: str) -> Person:
        made.append(Person(browser, console_server, devstack_env["OIDC_ISSUER"], user))
        made[-1].log_in()
        return made[-1]

    yield person
    for someone in made:
        someone.close()


@pytest.fixture
def tenant(console_server: str, user_token: Callable[[str], str]) -> Iterator[str]:
    """A fresh tenant name; whatever the test leaves of it is deleted through the API afterwards."""
    name = f"console-{secrets.token_hex(3)}"
    yield name
    admin = {"Authorization": f"Bearer {user_token('admin')}"}
    if requests.get(f"{console_server}/tenants/{name}", headers=admin, timeout=30).status_code == 200:
        requests.delete(f"{console_server}/tenants/{name}", headers=admin, timeout=120)


def test_admin_creates_a_tenant_alice_uses_it_bob_cannot_see_it(
    people: Callable[[str], Person], screenshots: Callable[[Any, str], Path], tmp_path: Path, tenant: str
) -> None:
    cert = tmp_path / "ca.pem"
    cert.write_bytes(ca_certificate_pem("console test CA"))

    # --- admin: dashboard, create form, the provisioning task followed live -------------------------
    admin = people("admin")
    page = admin.page
    response = admin.open("/console/")
    headers = response.headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
    assert page.title() == "Dashboard · IMM"
    assert "groups: admin" in page.locator("#user-groups").inner_text()
    screenshots(page, "admin-dashboard")
    admin.assert_no_error_banner()
    page.keyboard.press("Tab")  # keyboard users first reach the skip link, then the navigation
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"

    page.get_by_role("link", name="Create a tenant").click()
    assert page.title() == "Create a tenant · IMM"
    # A bad certificate is refused on the form with the API's words, and nothing is created.
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    page.fill("#id_name", tenant)
    page.fill("#id_scope", "team-a")
    page.set_input_files("#id_cert", str(bad))
    page.click("button:has-text('Create tenant')")
    assert "Incorrect certificate format" in page.locator("#form-error").inner_text()
    screenshots(page, "admin-create-tenant-refused")

    page.fill("#id_name", tenant)
    page.fill("#id_scope", "team-a")
    page.set_input_files("#id_cert", str(cert))
    page.fill("#id_max_endpoints", "3")
    page.fill("#id_requests_cpu", "2")
    page.fill("#id_requests_memory", "4Gi")
    page.fill("#id_limits_cpu", "4")
    page.fill("#id_limits_memory", "8Gi")
    screenshots(page, "admin-create-tenant-form")
    page.click("button:has-text('Create tenant')")
    page.wait_for_url("**/console/tasks/*/")
    assert page.title() == f"Task tenants.provision {tenant} · IMM"
    screenshots(page, "admin-task-started")
    # The page updates itself: no reload, the steps appear and the task ends.
    page.locator("#task-done").wait_for(timeout=TASK_TIMEOUT_MS)
    assert page.locator("#task-state").inner_text() == "Succeeded"
    steps = page.locator("#task-steps li")
    assert steps.count() >= 3
    assert all("done" in text for text in steps.all_inner_texts())
    screenshots(page, "admin-task-succeeded")
    admin.assert_no_error_banner()

    page.get_by_role("link", name=f"open tenant {tenant}").click()
    assert page.title() == f"Tenant {tenant} · IMM"
    assert page.locator("meter").count() == 5  # endpoints, cpu and memory requests and limits
    assert "team-a" in page.locator("dl.facts").inner_text()
    screenshots(page, "admin-tenant")
    admin.assert_no_error_banner()

    # Servings: an admin's edit that would not render is refused, and nothing is saved.
    admin.open("/console/servings/ovms/")
    original = page.locator("pre.code").first.inner_text()
    page.get_by_role("link", name="Edit").click()
    page.fill("#part-1", "{{ unclosed")
    page.click("button:has-text('Check and save')")
    assert "does not render against the sample endpoint" in page.locator("#form-error").inner_text()
    screenshots(page, "admin-serving-edit-refused")
    admin.open("/console/servings/ovms/")
    assert page.locator("pre.code").first.inner_text() == original

    admin.open("/console/tasks/?kind=tenants.provision")
    assert page.locator("#task-table tbody tr", has_text=tenant).count() == 1
    screenshots(page, "admin-tasks")

    # The Django admin is behind the same login and lists the Operations.
    page.get_by_role("link", name="Django admin").click()
    page.locator("a[href='/admin/operations/operation/']").first.click()
    screenshots(page, "admin-django-operations")
    expect(page.locator("#result_list")).to_contain_text(tenant)
    assert admin.csp_violations == []

    # --- alice (team-a): the tenant is hers to see, not to delete ----------------------------------
    alice = people("alice")
    card = alice.page.locator(".tenant-card", has_text=tenant)
    assert card.count() == 1
    assert "0 of 3" in card.locator(".endpoint-count").inner_text()
    screenshots(alice.page, "alice-dashboard")
    alice.assert_no_error_banner()
    alice.page.get_by_role("link", name=tenant).click()
    assert alice.page.title() == f"Tenant {tenant} · IMM"
    assert alice.page.locator("#delete-tenant").count() == 0
    screenshots(alice.page, "alice-tenant")
    alice.assert_no_error_banner()
    # Upload from the browser straight to the bucket, with the progress bar, then see the model tree.
    model_file = tmp_path / "saved_model.pb"
    model_file.write_bytes(secrets.token_bytes(300_000))
    alice.page.fill("#upload-model", "resnet")
    alice.page.fill("#upload-version", "1")
    alice.page.set_input_files("#upload-file", str(model_file))
    alice.page.click("#upload-form button[type=submit]")
    alice.page.locator("#upload-progress").wait_for(state="visible")
    alice.page.locator("#upload-form .banner.success").wait_for(timeout=60_000)
    assert alice.page.locator("#upload-progress").get_attribute("value") == "300000"
    screenshots(alice.page, "alice-upload-done")
    alice.page.locator("#models").wait_for(timeout=30_000)  # the page reloads with the new model
    tree = alice.page.locator("#models").inner_text()
    assert "Version 1" in tree
    assert "resnet/1/saved_model.pb" in tree
    assert "293.0 KiB" in tree
    screenshots(alice.page, "alice-tenant-with-model")
    alice.assert_no_error_banner()
    # An endpoint on that model: created, available, scaled to 2, paused, deleted, all from the pages.
    alice.page.click("#new-endpoint")
    assert alice.page.title() == "New endpoint · IMM"
    alice.page.fill("#ep-name", "demo")
    alice.page.fill("#ep-model", "resnet")
    alice.page.fill("#ep-subject", "client")
    alice.page.select_option("#ep-serving", "ovms")
    alice.page.fill("#ep-resources", "requests.cpu=500m\nrequests.memory=512Mi\nlimits.cpu=1\nlimits.memory=1Gi")
    screenshots(alice.page, "alice-endpoint-form")
    alice.page.click("button:has-text('Create endpoint')")
    alice.page.wait_for_url(f"**/console/tenants/{tenant}/endpoints/demo/")
    assert alice.page.title() == "Endpoint demo · IMM"
    assert "Endpoint demo created" in alice.page.locator(".banner.success").inner_text()
    status = alice.page.locator("#endpoint-status")
    expect(status).to_have_text("available", timeout=ENDPOINT_TIMEOUT_MS)  # updates without a reload
    assert "kind: InferenceEndpoint" in alice.page.locator("#endpoint-yaml").inner_text()
    screenshots(alice.page, "alice-endpoint-available")
    alice.assert_no_error_banner()

    alice.page.fill("#scale-replicas", "2")
    alice.page.click("button:has-text('Scale')")
    assert "Scaling demo to 2" in alice.page.locator(".banner.success").inner_text()
    expect(alice.page.locator("#endpoint-replicas")).to_contain_text("2 available", timeout=ENDPOINT_TIMEOUT_MS)
    screenshots(alice.page, "alice-endpoint-scaled")

    alice.page.click("#pause")
    assert "Paused demo" in alice.page.locator(".banner.success").inner_text()
    expect(alice.page.locator("#endpoint-paused")).to_be_visible()
    expect(status).to_have_text("scaled to 0", timeout=ENDPOINT_TIMEOUT_MS)
    assert alice.page.locator("#resume").count() == 1
    screenshots(alice.page, "alice-endpoint-paused")

    alice.open(f"/console/tenants/{tenant}/")
    row = alice.page.locator("#endpoint-table tr[data-endpoint=demo]")
    expect(row.locator(".endpoint-status")).to_have_text("scaled to 0")
    row.get_by_role("link", name="demo").click()
    alice.page.click("#delete-endpoint")  # the dialog is accepted
    alice.page.wait_for_url(f"**/console/tenants/{tenant}/")
    assert "Deleted endpoint demo" in alice.page.locator(".banner.success").inner_text()
    expect(alice.page.locator("#no-endpoints")).to_be_visible(timeout=30_000)

    alice.page.get_by_role("button", name="Delete version 1").click()  # the dialog is accepted
    assert "Deleted model resnet/1/" in alice.page.locator(".banner.success").inner_text()
    assert alice.page.locator("#no-models").count() == 1

    refused = alice.open("/console/tenants/new/")
    assert refused.status == 403
    assert alice.page.title() == "Not allowed · IMM"
    assert "platform administrators" in alice.page.locator("#error-banner").inner_text()

    alice.open("/console/servings/")
    assert alice.page.locator("#serving-table").get_by_role("link", name="ovms").count() == 1
    alice.page.get_by_role("link", name="ovms").click()
    assert alice.page.title() == "Serving ovms · IMM"
    assert alice.page.locator("pre.code .hl-key").count() > 0
    assert alice.page.get_by_role("link", name="Edit").count() == 0
    screenshots(alice.page, "alice-serving")
    alice.assert_no_error_banner()

    # --- bob (team-b): nothing of alice's tenant ---------------------------------------------------
    bob = people("bob")
    assert bob.page.locator(".tenant-card", has_text=tenant).count() == 0
    screenshots(bob.page, "bob-dashboard")
    hidden = bob.open(f"/console/tenants/{tenant}/")
    assert hidden.status in (403, 404)
    assert "4Gi" not in bob.page.content()
    screenshots(bob.page, "bob-tenant-refused")
    bob.open("/console/audit/")
    assert bob.page.locator("#audit-table", has_text=tenant).count() == 0
    screenshots(bob.page, "bob-audit")

    # --- the audit trail of what alice did in the console, and the usage pages ---------------------
    alice.open(f"/console/audit/?tenant={tenant}")
    actions = alice.page.locator("#audit-table tbody tr td:nth-child(3)").all_inner_texts()
    assert {"endpoint.create", "endpoint.scale", "endpoint.pause", "endpoint.delete", "model.delete"} <= set(actions)
    assert alice.page.get_by_role("link", name="Download CSV").count() == 1
    screenshots(alice.page, "alice-audit")
    alice.open(f"/console/tenants/{tenant}/")
    assert alice.page.locator("#usage-charts svg polyline").count() == 4
    screenshots(alice.page, "alice-tenant-usage")
    alice.assert_no_error_banner()
    admin.open("/console/usage/")
    assert page.title() == "Usage by tenant · IMM"
    screenshots(page, "admin-usage-ranking")

    # --- admin deletes the tenant, confirming in the dialog, and follows the task ------------------
    admin.open(f"/console/tenants/{tenant}/")
    page.click("#delete-tenant")
    page.wait_for_url("**/console/tasks/*/")
    assert page.title() == f"Task tenants.delete {tenant} · IMM"
    page.locator("#task-done").wait_for(timeout=TASK_TIMEOUT_MS)
    screenshots(page, "admin-delete-succeeded")
    admin.open("/console/")
    assert page.locator(".tenant-card", has_text=tenant).count() == 0
    admin.assert_no_error_banner()

    # --- logging out ends the session ----------------------------------------------------------------
    alice.page.get_by_role("button", name="Log out").click()
    alice.page.wait_for_load_state()
    assert alice.page.locator("#user-name").count() == 0
    alice.open("/console/")
    assert alice.page.url.startswith(alice.issuer)
