"""The WSGI adapter: translates between a WSGI environ and the shared core."""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from penchant.middleware.core import Core
from penchant.middleware.facts import Response, from_environ
from penchant.middleware.personalization import Personalization, bind, unbind

if TYPE_CHECKING:
    from penchant.middleware.types import StartResponse, WSGIApp
    from penchant.service import Penchant

__all__ = ["PenchantWSGI"]

# A status line's code, for the three digits it starts with (anything else: 0).
_STATUS = {f"{code:03d}": code for code in range(100, 1000)}


class PenchantWSGI:
    """``app = PenchantWSGI(app, penchant)``; usually ``penchant.wsgi(app)``."""

    def __init__(self, app: WSGIApp, penchant: Penchant, *, core: Core | None = None) -> None:
        self.app = app
        self.penchant = penchant
        self.core = core or Core(penchant)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        core = self.core
        try:
            facts = from_environ(environ)
            endpoint = core.endpoint(facts)
        except Exception:
            core.failed("request parsing")
            return self.app(environ, start_response)
        if endpoint is not None:
            body = b""
            if endpoint.needs_body and facts.method in endpoint.methods:
                refused = core.refuse_length(facts)
                if refused is not None:
                    return _respond(start_response, refused)
                read = _read_body(environ, facts.content_length, core.settings.max_body_bytes)
                if read is None:
                    return _respond(start_response, core.too_large())
                body = read
            return _respond(start_response, core.handle(endpoint, facts, body))
        personalization = Personalization(core, facts)
        environ["penchant.personalization"] = personalization

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            content_type = ""
            for name, value in headers:
                if name == "Content-Type" or name.lower() == "content-type":
                    content_type = value
                    break
            code = _STATUS.get(status[:3], 0)
            extra = core.on_response_start(personalization, code, content_type)
            if extra:
                headers = [*headers, *extra]
            if exc_info is not None:
                return start_response(status, headers, exc_info)
            return start_response(status, headers)

        token = bind(personalization)
        try:
            return self.app(environ, start)
        finally:
            unbind(token)


def _read_body(environ: dict[str, Any], declared: str | None, cap: int) -> bytes | None:
    """At most ``cap + 1`` bytes of the body; None when it is larger (the rest is not read)."""
    if declared is not None and declared.strip().isdecimal():
        length = int(declared)
        if length > cap:
            return None
    elif environ.get("wsgi.input_terminated"):
        length = cap + 1
    else:
        # Without a length the server may not end the stream for us: read nothing.
        return b""
    stream = environ.get("wsgi.input")
    data: bytes = stream.read(length) if stream is not None and length else b""
    return None if len(data) > cap else data


def _respond(start_response: StartResponse, response: Response) -> list[bytes]:
    phrase = HTTPStatus(response.status).phrase
    start_response(f"{response.status} {phrase}", response.headers)
    return [response.body]
