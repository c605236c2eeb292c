"""Whether a visitor may be tracked: consent modes, privacy signals, opt-out.

Pure decisions over values the HTTP layer has already read. Any doubt (a
signal that cannot be parsed, a consent cookie that does not verify) means no
tracking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CONSENT_MAX_AGE",
    "ConsentState",
    "Decision",
    "Reason",
    "decide",
    "parse_flag",
]

#: Consent and identity cookies live at most 13 months (390 days stays under it).
CONSENT_MAX_AGE = 390 * 86_400

Reason = Literal[
    "allowed",
    "disabled",
    "opted_out",
    "gpc",
    "dnt",
    "signal_error",
    "no_consent",
    "error",
]
#: A consent cookie that verifies, none at all, or one that does not verify (tampered, expired).
ConsentState = Literal["valid", "absent", "invalid"]


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome: tracked or not, and why (a word for logs, counters and the privacy page)."""

    allowed: bool
    reason: Reason

    def __bool__(self) -> bool:
        return self.allowed


ALLOWED = Decision(True, "allowed")


def parse_flag(value: str | None) -> bool | None:
    """A ``1``/``0`` header such as ``Sec-GPC`` or ``DNT``: None when it cannot be read."""
    if value is None:
        return False
    value = value.strip()
    if value == "1":
        return True
    if value in ("0", "", "null", "unspecified"):
        return False
    return None


def decide(
    *,
    mode: Literal["opt-out", "opt-in"],
    enabled: bool = True,
    opted_out: bool | None = False,
    gpc: str | None = None,
    dnt: str | None = None,
    honor_gpc: bool = True,
    honor_dnt: bool = True,
    consent: ConsentState = "absent",
) -> Decision:
    """May this visitor be tracked?

    ``opted_out`` is None when the opt-out cookie was present but unreadable.
    The order gives the most specific reason: kill switch, the visitor's own
    choice, then the browser's signals, then consent.
    """
    if not enabled:
        return Decision(False, "disabled")
    if opted_out is None:
        return Decision(False, "signal_error")
    if opted_out:
        return Decision(False, "opted_out")
    if honor_gpc:
        flag = parse_flag(gpc)
        if flag is None:
            return Decision(False, "signal_error")
        if flag:
            return Decision(False, "gpc")
    if honor_dnt:
        flag = parse_flag(dnt)
        if flag is None:
            return Decision(False, "signal_error")
        if flag:
            return Decision(False, "dnt")
    if mode == "opt-in" and consent != "valid":
        return Decision(False, "no_consent")
    return ALLOWED
