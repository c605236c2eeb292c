"""Penchant's own endpoints: each a function of (core, facts, body) returning a Response.

Routes, relative to the prefix (default ``/personalization``):
``POST /track-interaction``, ``GET /recommendations/{content_type}``,
``GET /tracker.js``, ``GET /privacy``, ``POST /opt-out``, ``POST /opt-in``,
``GET|DELETE /my-data``, ``POST /my-data/delete`` (the form of the privacy
page), ``GET /dashboard`` and ``GET /health`` (operator credentials).
"""

from __future__ import annotations

import logging
import math
import secrets
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote

from penchant.engine.ranking import CONTENT_TYPES
from penchant.engine.validation import BodyError, parse_beacon
from penchant.middleware.facts import (
    RequestFacts,
    Response,
    html_response,
    json_response,
    redirect,
)
from penchant.middleware.identity import CONSENT_COOKIE, OPT_OUT_COOKIE, is_bot, same_origin
from penchant.storage.store import StoreUnavailable

if TYPE_CHECKING:
    from penchant.middleware.core import Core, Endpoint, Visitor

__all__ = ["ERASE_FAILED", "EXPORT_FAILED", "LIMITED", "routes"]

logger = logging.getLogger("personalization")

_POST = frozenset({"POST"})
_BEACON_TYPES = frozenset({"text/plain", "application/json", ""})
MAX_LIMIT = 100


def routes() -> dict[str, Endpoint]:
    from penchant.middleware.core import Endpoint

    return {
        "/track-interaction": Endpoint("beacon", track_interaction, _POST, needs_body=True),
        "/recommendations/": Endpoint("recommendations", recommendations),
        "/tracker.js": Endpoint("tracker", tracker, blocking=False),
        "/privacy": Endpoint("privacy", privacy),
        "/opt-out": Endpoint("opt-out", opt_out, _POST),
        "/opt-in": Endpoint("opt-in", opt_in, _POST),
        "/my-data": Endpoint("my-data", my_data, frozenset({"GET", "HEAD", "DELETE"})),
        "/my-data/delete": Endpoint("erase", erase_form, _POST),
        "/dashboard": Endpoint("dashboard", dashboard),
        "/health": Endpoint("health", health),
    }


def _query(facts: RequestFacts, name: str) -> str | None:
    values = parse_qs(facts.query, keep_blank_values=True).get(name)
    return values[0] if values else None


def _url(core: Core, facts: RequestFacts, route: str) -> str:
    return f"{facts.root}{core.prefix}{route}"


def _next(core: Core, facts: RequestFacts) -> str:
    """Where a form sends the visitor back to: a local path only, never another site."""
    target = _query(facts, "next")
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and target.isprintable()  # no control characters: no header injection
    ):
        # Non-ASCII letters percent-encoded again: a header holds ASCII only.
        return quote(target, safe="/?&=#+:@,;~!$'()*-._%")
    return _url(core, facts, "/privacy")


def _cross_site(core: Core, facts: RequestFacts) -> bool:
    return not same_origin(
        facts.sec_fetch_site,
        facts.origin,
        facts.host,
        core.settings.allowed_hosts,
        secure=facts.secure,
    )


def _forbidden() -> Response:
    return json_response(403, {"error": "origin: cross-site requests are refused"})


# ------------------------------------------------------------------ beacon
def track_interaction(core: Core, facts: RequestFacts, body: bytes) -> Response:
    """The tracker's beacon: validate every event, then store or drop it with a reason."""
    media = facts.content_type.split(";", 1)[0].strip().lower()
    if media not in _BEACON_TYPES:
        core.count_dropped("invalid")
        return json_response(415, {"error": "content-type: send text/plain or application/json"})
    s = core.settings
    try:
        beacon = parse_beacon(body, max_metadata_bytes=s.max_metadata_bytes)
    except BodyError as exc:
        core.count_dropped("invalid")
        return json_response(400, {"error": str(exc)})
    core.count_dropped("invalid", len(beacon.rejected))
    n = len(beacon.events)
    # Refused events are answered like accepted ones: a forger learns nothing.
    reply = json_response(
        202,
        {
            "accepted": n,
            "rejected": [{"index": i, "reason": reason} for i, reason in beacon.rejected],
        },
    )
    if n == 0:
        return reply
    refusal = _refusal(core, facts, beacon.token)
    if isinstance(refusal, str):
        core.count_dropped(refusal, n)
        return reply
    admitted = core.admitted(facts, refusal, n)
    core.count_dropped("rate_limited", n - admitted)
    for _, event in beacon.events[:admitted]:
        core.submit_event(refusal, event)
    return reply


def _refusal(core: Core, facts: RequestFacts, token: str | None) -> str | Visitor:
    """The reason to drop a beacon's events, or the visitor to record them for."""
    s = core.settings
    if not s.enabled:
        return "disabled"
    if _cross_site(core, facts):
        return "cross_site"
    if is_bot(facts.user_agent):
        return "bot"
    visitor = core.identify(facts)
    if not visitor.tracking_allowed:
        return "consent"
    if s.require_token:
        try:
            valid = core.signers().check_page_token(token, visitor.user_id)
        except Exception:
            valid = False
        if not valid:
            return "forged"
    return visitor


# --------------------------------------------------------- recommendations
def recommendations(core: Core, facts: RequestFacts, body: bytes) -> Response:
    content_type = facts.path[len(core.prefix) + len("/recommendations/") :].strip("/")
    if content_type not in CONTENT_TYPES:
        return json_response(
            404,
            {
                "error": f"content_type: unknown {content_type[:64]!r}",
                "content_types": sorted(CONTENT_TYPES),
            },
        )
    raw = _query(facts, "limit")
    limit: int | None = None
    if raw is not None:
        # ASCII digits only: "²" is a digit to isdigit() and not a number to int()
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
            return json_response(400, {"error": f"limit: an integer from 1 to {MAX_LIMIT}"})
        limit = int(raw)
    p = core.personalization(facts)
    found = p.recommendations(content_type, limit)
    return json_response(
        200,
        {
            "content_type": content_type,
            "personalized": p.tracking_allowed and p.variant == "personalized",
            "variant": p.variant if p.tracking_allowed else None,
            "recommendations": [r.as_dict() for r in found],
        },
        headers=[("Vary", "Cookie")],
    )


# ------------------------------------------------------------------ tracker
def tracker(core: Core, facts: RequestFacts, body: bytes) -> Response:
    from penchant.tracker_js.serve import tracker_response

    status, headers, payload = tracker_response(
        facts.if_none_match,
        version=_query(facts, "v"),
        accept_encoding=facts.accept_encoding,
    )
    return Response(status, list(headers), payload)


# ------------------------------------------------------------------ privacy
def _state(core: Core, facts: RequestFacts) -> dict[str, object]:
    visitor = core.identify(facts)
    s = core.settings
    return {
        "mode": s.consent,
        "tracking": visitor.tracking_allowed,
        "reason": visitor.reason,
        "identity": visitor.identity,
        "opted_out": visitor.reason == "opted_out",
        "consent": visitor.consent,
        "export": visitor.identity == "cookie"
        or (visitor.identity == "fingerprint" and s.export_with_fingerprint),
        "retention_days": s.retention_days,
        "signals": {"gpc": s.honor_gpc, "dnt": s.honor_dnt},
    }


def privacy(core: Core, facts: RequestFacts, body: bytes) -> Response:
    state = _state(core, facts)
    if facts.wants_json():
        urls = _privacy_urls(core, facts)
        return json_response(200, {**state, "urls": urls}, headers=[("Vary", "Accept, Cookie")])
    return _privacy_html(core, facts, state)


def _privacy_urls(core: Core, facts: RequestFacts) -> dict[str, str]:
    here = quote(_url(core, facts, "/privacy"), safe="/")
    return {
        "opt_out": _url(core, facts, f"/opt-out?next={here}"),
        "opt_in": _url(core, facts, f"/opt-in?next={here}"),
        "erase": _url(core, facts, f"/my-data/delete?next={here}"),
        "export": _url(core, facts, "/my-data"),
    }


def _privacy_html(
    core: Core,
    facts: RequestFacts,
    state: dict[str, object],
    *,
    status: int = 200,
    notice: str | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> Response:
    from penchant.middleware import privacy_page

    return html_response(
        status,
        privacy_page.render(state, _privacy_urls(core, facts), notice=notice),
        headers=[
            *(headers or []),
            ("Content-Security-Policy", privacy_page.CSP),
            ("Referrer-Policy", "same-origin"),
            ("Vary", "Accept, Cookie"),
        ],
    )


#: Why an erasure or an export did not happen; the visitor is told, and can try again.
ERASE_FAILED = "your data could not be deleted right now; nothing was deleted: try again shortly"
EXPORT_FAILED = "your data cannot be read right now; try again shortly"
LIMITED = "too many requests from your address: try again in a minute"
_RETRY_AFTER = {429: "60", 503: "5"}


def _erase(core: Core, facts: RequestFacts) -> tuple[int, int | None]:
    """Erase what is stored under this request's identities (every accepted secret's).

    ``(200, rows erased)``; or ``(429, None)`` over the address's limit and
    ``(503, None)`` when the database could not do it within ``privacy_timeout``:
    then nothing stored was deleted and nothing may be claimed.
    """
    try:
        if not core.privacy_allowed(facts):
            return 429, None
        identities = core.identities_of(facts)
        if identities is None:
            return 200, 0
        return 200, core.penchant.erase(identities[0])
    except StoreUnavailable as exc:
        logger.warning("erasure not done: %s", exc)
        return 503, None
    except Exception:
        core.failed("erasure")
        return 503, None


def _not_done(
    core: Core,
    facts: RequestFacts,
    status: int,
    message: str,
    data: dict[str, object],
    cookies: list[str],
    state: dict[str, object] | None = None,
) -> Response:
    """A 429 or 503 that says what did not happen: JSON, or the privacy page with the message."""
    headers = [("Set-Cookie", value) for value in cookies]
    headers.append(("Retry-After", _RETRY_AFTER.get(status, "5")))
    if facts.wants_json():
        return json_response(status, {**data, "error": message}, headers=headers)
    page_state = state if state is not None else _state(core, facts)
    notice = message[0].upper() + message[1:] + "."
    return _privacy_html(core, facts, page_state, status=status, notice=notice, headers=headers)


def _done(core: Core, facts: RequestFacts, data: dict[str, object], cookies: list[str]) -> Response:
    headers = [("Set-Cookie", value) for value in cookies]
    if facts.wants_json():
        return json_response(200, data, headers=headers)
    return redirect(_next(core, facts), headers=headers)


def opt_out(core: Core, facts: RequestFacts, body: bytes) -> Response:
    """Set the opt-out cookie (strictly necessary) and erase what was stored.

    The cookie is set even when the erasure cannot happen now: tracking stops at
    once, and the answer says the data is still to be deleted."""
    if _cross_site(core, facts):
        return _forbidden()
    status, erased = _erase(core, facts)
    cookies = [
        core.set_cookie(OPT_OUT_COOKIE, "1", facts),
        *core.clear_cookie(CONSENT_COOKIE, facts),
    ]
    if erased is None:
        state = {**_state(core, facts), "tracking": False, "reason": "opted_out", "opted_out": True}
        message = LIMITED if status == 429 else ERASE_FAILED
        return _not_done(
            core,
            facts,
            status,
            f"personalization is off, but {message}",
            {"tracking": False},
            cookies,
            state,
        )
    return _done(core, facts, {"tracking": False, "erased": erased}, cookies)


def opt_in(core: Core, facts: RequestFacts, body: bytes) -> Response:
    """Reverse an opt-out; in opt-in mode, record consent in a signed cookie."""
    if _cross_site(core, facts):
        return _forbidden()
    cookies = core.clear_cookie(OPT_OUT_COOKIE, facts)
    if core.settings.consent == "opt-in":
        try:
            signers = core.signers()
        except Exception:
            return json_response(503, {"error": "consent cannot be recorded right now"})
        state, existing = core.consent_of(facts)
        visitor_id = existing if state == "valid" and existing else secrets.token_urlsafe(18)
        cookies.append(core.set_cookie(CONSENT_COOKIE, signers.consent_value(visitor_id), facts))
    return _done(core, facts, {"tracking": True}, cookies)


def my_data(core: Core, facts: RequestFacts, body: bytes) -> Response:
    """GET: a JSON download of what is stored; DELETE: erase it."""
    if facts.method == "DELETE":
        if _cross_site(core, facts):
            return _forbidden()
        status, erased = _erase(core, facts)
        if erased is None:
            message = LIMITED if status == 429 else ERASE_FAILED
            return json_response(
                status, {"error": message}, headers=[("Retry-After", _RETRY_AFTER[status])]
            )
        return json_response(200, {"erased": erased})
    try:
        if not core.privacy_allowed(facts):
            return json_response(429, {"error": LIMITED}, headers=[("Retry-After", "60")])
        identities = core.identities_of(facts)
    except Exception:  # the secret cannot be read right now (a database kept it)
        core.failed("export")
        return json_response(503, {"error": EXPORT_FAILED}, headers=[("Retry-After", "5")])
    if identities is None:
        return json_response(404, {"error": "nothing is stored for you"})
    user_ids, kind = identities
    if kind == "fingerprint" and not core.settings.export_with_fingerprint:
        return json_response(
            403,
            {
                "error": "export: visitors recognised without a cookie can share an identity; "
                "ask the site operator for a copy"
            },
        )
    try:
        data = core.penchant.export(user_ids)
    except StoreUnavailable as exc:
        logger.warning("export not done: %s", exc)
        return json_response(503, {"error": EXPORT_FAILED}, headers=[("Retry-After", "5")])
    return json_response(
        200,
        data,
        headers=[("Content-Disposition", 'attachment; filename="my-data.json"')],
    )


def erase_form(core: Core, facts: RequestFacts, body: bytes) -> Response:
    """The privacy page's "Delete my data" button (a form: works without JavaScript)."""
    if _cross_site(core, facts):
        return _forbidden()
    status, erased = _erase(core, facts)
    if erased is None:
        return _not_done(core, facts, status, LIMITED if status == 429 else ERASE_FAILED, {}, [])
    return _done(core, facts, {"erased": erased}, [])


# ----------------------------------------------------------------- operator
def _refused_operator(core: Core, facts: RequestFacts) -> Response | None:
    """Why the operator's credentials on this request do not open the page; None: they do.

    Credentials travel in the ``Authorization`` header only (a URL ends up in access
    logs and browser history); an address that keeps failing waits, longer each time.
    """
    from penchant.middleware.dashboard import authorized

    if _query(facts, "token") is not None:
        return json_response(
            400, {"error": "token: send it as Authorization: Bearer, never in the URL"}
        )
    address = core.client_ip(facts)
    wait = core.backoff.wait(address)
    if wait > 0:
        return json_response(
            429,
            {"error": "credentials: too many failed attempts from this address; wait"},
            headers=[("Retry-After", str(math.ceil(wait)))],
        )
    if not authorized(facts.authorization, core.settings):
        core.backoff.failed(address)
        return json_response(
            401,
            {"error": "credentials required"},
            headers=[("WWW-Authenticate", 'Basic realm="penchant", charset="UTF-8"')],
        )
    core.backoff.succeeded(address)
    return None


def dashboard(core: Core, facts: RequestFacts, body: bytes) -> Response:
    try:
        from penchant.middleware import dashboard as board
    except ImportError:
        return json_response(404, {"error": "the dashboard needs jinja2 installed"})
    refused = _refused_operator(core, facts)
    if refused is not None:
        if refused.status == 401:  # the dashboard's own page, asking for basic credentials
            return Response(401, list(board.UNAUTHORIZED_HEADERS), board.UNAUTHORIZED_BODY)
        return refused
    status, headers, payload = board.respond(
        core.penchant,
        authorization_header=facts.authorization,
        now=core.penchant.clock(),
    )
    return Response(status, list(headers), payload)


def health(core: Core, facts: RequestFacts, body: bytes) -> Response:
    """Writer accounting as JSON, behind the dashboard's credentials."""
    try:
        refused = _refused_operator(core, facts)
    except ImportError:
        return json_response(404, {"error": "the health endpoint needs jinja2 installed"})
    if refused is not None:
        return refused
    report = core.penchant.health()
    # 503 while the schema is missing or behind, so a load balancer or a check sees it
    return json_response(200 if report["ok"] else 503, {**report, **core.stats()})
