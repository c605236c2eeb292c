"""Scrubbing free text before it is stored: e-mail addresses and phone numbers.

Visitors type into search boxes what they would never want kept (an e-mail
address, a phone number). When a site chooses to store search text, or a path
or metadata value carries such a thing, it is replaced by a placeholder.
"""

from __future__ import annotations

import re

__all__ = ["EMAIL_PLACEHOLDER", "PHONE_PLACEHOLDER", "scrub"]

EMAIL_PLACEHOLDER = "[email]"
PHONE_PLACEHOLDER = "[phone]"

# Loose local part (no slash, so a path keeps its segments); %40 is an encoded @ in paths.
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+=?^_`{|}~-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+",
    re.IGNORECASE,
)
# Seven or more digits, optionally led by + and split by spaces, dots, dashes or brackets.
_PHONE = re.compile(r"(?<![\w])\+?\(?\d(?:[\s().-]{0,2}\d){6,}(?![\w])")


def scrub(text: str) -> str:
    """``text`` with every e-mail address and phone number replaced by a placeholder."""
    if not text:
        return text
    if "@" in text or "%40" in text:  # the e-mail pattern is the costly one: only when it can match
        text = _EMAIL.sub(EMAIL_PLACEHOLDER, text)
    return _PHONE.sub(PHONE_PLACEHOLDER, text)
