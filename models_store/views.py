"""Console actions on models: delete a version (with the API's in-use refusal) from the tenant page.

The listing itself is part of the tenant page; uploads go from the browser straight to the object
store through the API's direct-upload routes (static/console/upload.js).
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import Conflict
from inferencemgmt.views import console_page
from models_store import services


@console_page()
def model_version_delete(
    request: HttpRequest, identity: Identity, tenant: str, name: str, version: int
) -> HttpResponse:
    """POST only (the page asks for confirmation first); a version an endpoint serves needs "force"."""
    if request.method == "POST":
        force = request.POST.get("force") == "on"
        try:
            result = services.model_delete(identity, tenant=tenant, name=name, version=version, force=force)
        except Conflict as error:
            messages.error(request, f"{error.description} (tick 'even if served' to delete it anyway).")
        else:
            messages.success(request, f"Deleted model {result['model_path']}.")
    return redirect("console-tenant", name=tenant)
