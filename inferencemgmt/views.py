"""The console's home page (domain pages live in each app's views.py)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from inferencemgmt.auth.identity import identity_from_session


def home(request: HttpRequest) -> HttpResponse:
    identity = identity_from_session(request.session) if request.user.is_authenticated else None
    return render(request, "home.html", {"identity": identity})
