"""The ASGI adapter: translates between ASGI messages and the shared core."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from penchant.middleware.core import Core, Endpoint
from penchant.middleware.facts import RequestFacts, Response, from_scope
from penchant.middleware.personalization import Personalization, bind, unbind

if TYPE_CHECKING:
    from penchant.middleware.types import ASGIApp, Message, Receive, Scope, Send
    from penchant.service import Penchant

__all__ = ["PenchantASGI"]


class PenchantASGI:
    """``app = PenchantASGI(app, penchant)``; usually ``penchant.asgi(app)``."""

    def __init__(self, app: ASGIApp, penchant: Penchant, *, core: Core | None = None) -> None:
        self.app = app
        self.penchant = penchant
        self.core = core or Core(penchant)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.app(scope, receive, self._lifespan_send(send))
            else:
                await self.app(scope, receive, send)
            return
        core = self.core
        try:
            facts = from_scope(scope)
            endpoint = core.endpoint(facts)
        except Exception:
            core.failed("request parsing")
            await self.app(scope, receive, send)
            return
        if endpoint is not None:
            await self._endpoint(endpoint, facts, receive, send)
            return
        personalization = Personalization(core, facts)
        scope["penchant.personalization"] = personalization
        state = scope.get("state")
        if isinstance(state, dict):
            state["personalization"] = personalization
        else:
            scope["state"] = {"personalization": personalization}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                content_type = ""
                for name, value in message.get("headers", ()):
                    if name == b"content-type" or name.lower() == b"content-type":
                        content_type = value.decode("latin-1")
                        break
                extra = core.on_response_start(personalization, message["status"], content_type)
                if extra:
                    message = {
                        **message,
                        "headers": [
                            *message.get("headers", ()),
                            *((k.lower().encode(), v.encode("latin-1")) for k, v in extra),
                        ],
                    }
            await send(message)

        token = bind(personalization)
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            unbind(token)

    async def _endpoint(
        self, endpoint: Endpoint, facts: RequestFacts, receive: Receive, send: Send
    ) -> None:
        core = self.core
        body = b""
        if endpoint.needs_body and facts.method in endpoint.methods:
            refused = core.refuse_length(facts)
            if refused is not None:
                await _send(send, refused)
                return
            read = await _read_body(receive, facts.content_length, core.settings.max_body_bytes)
            if read is None:
                await _send(send, core.too_large())
                return
            body = read
        if endpoint.blocking:
            response = await asyncio.to_thread(core.handle, endpoint, facts, body)
        else:
            response = core.handle(endpoint, facts, body)
        await _send(send, response)

    def _lifespan_send(self, send: Send) -> Send:
        penchant = self.penchant

        async def lifespan_send(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                # Events still queued are written before the server reports it has stopped.
                try:
                    timeout = penchant.settings.shutdown_timeout
                    await asyncio.to_thread(penchant.flush, timeout)
                except Exception:
                    self.core.failed("flush at shutdown")
            await send(message)

        return lifespan_send


async def _read_body(receive: Receive, declared: str | None, cap: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed ``cap`` (rest unread)."""
    if declared is not None and declared.strip().isdecimal() and int(declared) > cap:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send(send: Send, response: Response) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in response.headers],
        }
    )
    await send({"type": "http.response.body", "body": response.body})
