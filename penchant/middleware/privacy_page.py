"""The visitor's privacy page: their state and plain forms that work without JavaScript."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from html import escape

__all__ = ["CSP", "STATE_TEXT", "render"]

STATE_TEXT: Mapping[str, str] = {
    "allowed": "Personalization is on.",
    "opted_out": "Personalization is off: you opted out. Nothing about your visits is recorded.",
    "gpc": (
        "Personalization is off: your browser sends the Global Privacy Control signal. "
        "Nothing about your visits is recorded."
    ),
    "dnt": (
        "Personalization is off: your browser sends the Do Not Track signal. "
        "Nothing about your visits is recorded."
    ),
    "no_consent": (
        "Personalization is off until you allow it. Nothing about your visits is recorded; "
        "pages show popular content and content related to the page you are on."
    ),
    "signal_error": (
        "Personalization is off: a privacy signal or cookie of your browser could not be read."
    ),
    "disabled": "Personalization is turned off on this site.",
    "error": "Personalization is unavailable right now; nothing is being recorded.",
}

IDENTITY_TEXT: Mapping[str, str] = {
    "fingerprint": (
        "You are recognised by a keyed hash of your browser's User-Agent, your network "
        "address and your preferred languages; no cookie is used and none of them is stored."
    ),
    "cookie": (
        "You are recognised by a random identifier in a first-party cookie, set when you "
        "allowed personalization; only a keyed hash of it is stored."
    ),
}

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2430}"
    "main{max-width:40rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:8px}"
    "h1{font-size:1.4rem;margin-top:0}.state{font-weight:600}"
    "form{display:inline-block;margin:.25rem .5rem .25rem 0}"
    "button{font:inherit;padding:.5rem 1rem;border-radius:6px;border:1px solid #8892a0;"
    "background:#fff;cursor:pointer}button.primary{background:#1d2430;color:#fff}"
    "small{color:#5b6572}"
    ".notice{padding:.75rem 1rem;border-radius:6px;background:#fdecea;color:#7a1c13}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
#: Nothing but this page's own style and forms posting back to the site.
CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def _form(action: str, label: str, *, primary: bool = False) -> str:
    css = ' class="primary"' if primary else ""
    return (
        f'<form method="post" action="{escape(action)}">'
        f'<button type="submit"{css}>{escape(label)}</button></form>'
    )


def render(
    state: Mapping[str, object], urls: Mapping[str, str], *, notice: str | None = None
) -> str:
    """The page for one visitor's ``state`` (see the JSON form of the same endpoint).

    ``notice``: what did not happen (an erasure the database could not do in time),
    shown first, above the forms that let the visitor try again."""
    reason = str(state.get("reason", "error"))
    lines = [f'<p class="notice" role="alert">{escape(notice)}</p>'] if notice else []
    lines.append(f'<p class="state">{escape(STATE_TEXT.get(reason, STATE_TEXT["error"]))}</p>')
    identity = state.get("identity")
    if state.get("tracking") and isinstance(identity, str) and identity in IDENTITY_TEXT:
        lines.append(f"<p>{escape(IDENTITY_TEXT[identity])}</p>")
    days = state.get("retention_days")
    lines.append(
        "<p>What is recorded: the pages, procedures, doctors and packages you look at, "
        "the categories your searches match (not the words you type), and which forms you "
        "send (never what you write in them). No IP address, browser string or query string "
        f"is stored. Records are deleted after {escape(str(days))} days.</p>"
    )
    actions: list[str] = []
    if state.get("opted_out") or (state.get("mode") == "opt-in" and not state.get("tracking")):
        actions.append(_form(urls["opt_in"], "Allow personalization", primary=True))
    if not state.get("opted_out"):
        actions.append(_form(urls["opt_out"], "Turn personalization off and delete my data"))
    actions.append(_form(urls["erase"], "Delete my data"))
    lines.append("<div>" + "".join(actions) + "</div>")
    if state.get("export"):
        lines.append(f'<p><a href="{escape(urls["export"])}" download>Download my data</a></p>')
    elif state.get("identity") == "fingerprint":
        lines.append(
            "<p><small>A copy of your data can be requested from the site operator: without a "
            "cookie, people sharing a browser and network look the same, so it is not offered "
            "here.</small></p>"
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        "<title>Personalization and your privacy</title>"
        f"<style>{_STYLE}</style></head><body><main>"
        "<h1>Personalization and your privacy</h1>" + "".join(lines) + "</main></body></html>"
    )
