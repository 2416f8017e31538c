"""The console's home page and what every console page shares (domain pages live in each app's views.py).

Console pages act as the Identity kept in the session by the OIDC login, through the same services
and selectors as the API. Domain errors become a readable page with the right status instead of the
API's JSON error shape, because a person is reading it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec

from django import forms
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from inferencemgmt.auth.identity import Identity, identity_from_session
from inferencemgmt.digits import ascii_int
from inferencemgmt.errors import Forbidden, ImmError

P = ParamSpec("P")
ConsoleView = Callable[Concatenate[HttpRequest, Identity, P], HttpResponse]


#: Badge colours of status words: green when serving, red when down, amber in between.
BADGES = {"available": "ok", "unavailable": "bad"}


def status_badge(status: str) -> str:
    """The badge colour of an endpoint's status word, the same on every console page that lists one."""
    return BADGES.get(status, "pending")


def first_error(detail: Any) -> str:
    """The first failing field of a serializer's errors, as ``field: message``.

    The API names the first failing field; the console's forms, checked by the API's serializers,
    say the same thing in the same words.
    """
    if isinstance(detail, dict) and detail:
        field, errors = next(iter(detail.items()))
        return f"{field}: {first_error(errors)}"
    if isinstance(detail, list) and detail:
        return first_error(detail[0])
    return str(detail)


class AsciiIntegerField(forms.IntegerField):
    """A console form's whole number: ASCII digits only (``digits.ascii_int``), like the API.

    Django's IntegerField takes whatever ``int()`` takes: Arabic-Indic "12" is 12 to it, ``" 1_0 "`` is 10.
    """

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        number = ascii_int(str(value).strip(), max_digits=9)
        if number is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return number


def session_identity(request: HttpRequest) -> Identity | None:
    """The signed-in console user, or None (a Django session without our identity counts as anonymous)."""
    if not request.user.is_authenticated:
        return None
    return identity_from_session(request.session)


# What a person reads first; the error's own title (the API's wording) follows in the banner.
HEADINGS = {400: "That was not accepted", 403: "Not allowed", 404: "Not found", 409: "Conflict"}


def render_error(request: HttpRequest, identity: Identity | None, error: ImmError) -> HttpResponse:
    """A domain error as a page: its title and description, never internals (the API's wording)."""
    heading = HEADINGS.get(error.status, "The platform could not do that" if error.status >= 500 else error.title)
    return render(
        request,
        "console/error.html",
        {"identity": identity, "error": error, "heading": heading, "retryable": error.retryable},
        status=error.status,
    )


def console_page(*, admin_only: bool = False) -> Callable[[ConsoleView[P]], Callable[..., HttpResponse]]:
    """Make a view a console page: sign-in required, optionally admins only, errors shown as pages.

    The view receives the Identity it must act as, so no page can forget to pass it to a service.
    """

    def decorate(view: ConsoleView[P]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def page(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            identity = session_identity(request)
            if identity is None:
                return redirect_to_login(request.get_full_path())
            if admin_only and not identity.is_admin:
                return render_error(
                    request, identity, Forbidden(description="Only platform administrators can open this page.")
                )
            try:
                return view(request, identity, *args, **kwargs)
            except ImmError as error:
                return render_error(request, identity, error)

        return page

    return decorate


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"identity": session_identity(request)})
