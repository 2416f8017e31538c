"""Content negotiation that never refuses the original clients: JSON is the fallback both ways.

The original API (Falcon) answered JSON whatever ``Accept`` said and read a body without a
``Content-Type`` as JSON. Its clients rely on both: the CLI's token helper sends
``Accept: text/plain`` to ``POST /authenticate/token``, and its tests post ``json.dumps(...)`` bodies
with no ``Content-Type`` at all. DRF's default negotiation answers those with 406 and 415.

* Answer: when no renderer matches ``Accept``, the view's first renderer (JSON on every API view; YAML for the schema)
  answers anyway. RFC 9110 §12.5.1 allows a server to disregard ``Accept`` instead of sending 406.
  A client that does accept one of our types still gets it (``text/html``: the browsable API), and an
  unknown ``?format=`` stays a 404.
* Request body: a body with no ``Content-Type`` (or an empty one) is parsed by the view's JSON
  parser, and so is one labelled ``text/plain``: the servers built on the standard library's
  wsgiref (``manage.py runserver``, Django's live test server) report a missing Content-Type as
  ``text/plain``, so on them the two cannot be told apart. A ``text/plain`` body that is not JSON is
  then 400 ``malformed_json``. A body that says another type (form data, XML, octet-stream, ...) is
  still 415: the client said what it sent, and it is not JSON. The part upload (``PUT .../upload``)
  never parses its body (it streams ``request.stream``), so its raw bytes are untouched by this.
"""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

# Content types that mean "the client did not say": none, or wsgiref's stand-in for none.
UNSAID_CONTENT_TYPES = ("", "text/plain")


class JSONFallbackNegotiation(DefaultContentNegotiation):
    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        media_type = (request.content_type or "").split(";", 1)[0].strip().lower()
        if media_type in UNSAID_CONTENT_TYPES:
            return next((parser for parser in parsers if isinstance(parser, JSONParser)), None)
        parser: BaseParser | None = super().select_parser(request, parsers)
        return parser

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        candidates = list(renderers)
        try:
            selected: tuple[BaseRenderer, str] = super().select_renderer(request, candidates, format_suffix)
        except NotAcceptable:
            # The same candidates the default chose from: a ``?format=`` still picks the renderer.
            wanted = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
            fallback = self.filter_renderers(candidates, wanted)[0] if wanted else candidates[0]
            return fallback, str(fallback.media_type)
        return selected
