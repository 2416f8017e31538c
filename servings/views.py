"""Console pages for serving templates: everyone reads them (they pick one per endpoint); admins edit.

An edit goes through ``serving_replace``, which test-renders the texts against the sample endpoint
before saving, so a template that would break every endpoint using it is refused on the form.
"""

from __future__ import annotations

import re

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import ImmError
from inferencemgmt.views import console_page
from servings import selectors, services
from servings.catalogue import PARTS, data_key

_TEMPLATE_TAG = re.compile(r"(\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\})", re.S)
_YAML_KEY = re.compile(r"^(\s*-?\s*)([A-Za-z0-9_.\-/]+)(:)(?=\s|$)", re.M)


def highlight(text: str) -> SafeString:
    """Template text as HTML with YAML keys and Jinja tags marked, so a reader sees the structure.

    The text is escaped first; only our own spans are added, so nothing from the template is markup.
    """
    parts = _TEMPLATE_TAG.split(text)
    html = []
    for index, part in enumerate(parts):
        if index % 2:
            html.append(f'<span class="hl-tag">{escape(part)}</span>')
        else:
            html.append(_YAML_KEY.sub(r'\1<span class="hl-key">\2</span>\3', str(escape(part))))
    return mark_safe("".join(html))  # noqa: S308 (every piece above was escaped)


def _users(identity: Identity, name: str) -> list[str] | None:
    """Endpoints using a template are listed cluster-wide, which only admins may do; None for others."""
    return selectors.serving_users(identity, name) if identity.is_admin else None


@console_page()
def serving_list(request: HttpRequest, identity: Identity) -> HttpResponse:
    servings = [{"name": name, "users": _users(identity, name)} for name in selectors.serving_list(identity)]
    return render(request, "servings/list.html", {"identity": identity, "servings": servings})


@console_page()
def serving_detail(request: HttpRequest, identity: Identity, name: str) -> HttpResponse:
    keys = [data_key(part) for part in PARTS]
    error: str | None = None
    texts = selectors.serving_get(identity, name) or {}
    if request.method == "POST":
        if not identity.is_admin:
            error = "Only platform administrators can change serving templates."
        else:
            texts = {key: request.POST.get(key, "").replace("\r\n", "\n") for key in keys}
            try:
                services.serving_replace(identity, name, texts)
            except ImmError as exc:
                error = exc.description or exc.title
            else:
                messages.success(request, f"Serving {name} saved; it rendered against the sample endpoint.")
                return redirect("console-serving", name=name)
    parts = [{"key": key, "text": texts.get(key, ""), "html": highlight(texts.get(key, ""))} for key in keys]
    context = {
        "identity": identity,
        "name": name,
        "parts": parts,
        "users": _users(identity, name),
        "error": error,
        "editing": request.method == "POST" or request.GET.get("edit") == "1",
    }
    return render(request, "servings/detail.html", context, status=400 if error else 200)
