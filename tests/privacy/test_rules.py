"""The pure privacy rules: the tracking decision and the scrubbing of free text."""

from __future__ import annotations

import itertools
import re

import pytest

from penchant.engine.consent import decide, parse_flag
from penchant.engine.privacy import EMAIL_PATTERN, EMAIL_PLACEHOLDER, PHONE_PLACEHOLDER, scrub


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        ("1", True),
        (" 1 ", True),
        ("0", False),
        ("", False),
        ("yes", None),
        ("2", None),
    ],
)
def test_parse_flag(value: str | None, expected: bool | None) -> None:
    assert parse_flag(value) is expected


def test_opt_out_mode_tracks_by_default_and_stops_for_every_signal() -> None:
    assert decide(mode="opt-out").allowed
    assert decide(mode="opt-out", gpc="1").reason == "gpc"
    assert decide(mode="opt-out", dnt="1").reason == "dnt"
    assert decide(mode="opt-out", opted_out=True).reason == "opted_out"
    assert decide(mode="opt-out", opted_out=None).reason == "signal_error"
    assert decide(mode="opt-out", gpc="maybe").reason == "signal_error"
    assert decide(mode="opt-out", enabled=False).reason == "disabled"
    # Signals can be turned off one by one.
    assert decide(mode="opt-out", gpc="1", honor_gpc=False).allowed
    assert decide(mode="opt-out", dnt="1", honor_dnt=False).allowed


def test_opt_in_mode_needs_valid_consent() -> None:
    assert decide(mode="opt-in").reason == "no_consent"
    assert decide(mode="opt-in", consent="invalid").reason == "no_consent"
    assert decide(mode="opt-in", consent="valid").allowed
    # A privacy signal wins over consent given earlier.
    assert decide(mode="opt-in", consent="valid", gpc="1").reason == "gpc"
    assert decide(mode="opt-in", consent="valid", opted_out=True).reason == "opted_out"


def test_any_doubt_means_no_tracking() -> None:
    values = [None, "0", "1", "x"]
    for gpc, dnt, opted in itertools.product(values, values, [False, True, None]):
        decision = decide(mode="opt-out", gpc=gpc, dnt=dnt, opted_out=opted)
        clean = gpc in (None, "0") and dnt in (None, "0") and opted is False
        assert decision.allowed is clean
        assert bool(decision) is clean


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("botox near me", "botox near me"),
        ("write to jane.doe+x@example.co.uk today", f"write to {EMAIL_PLACEHOLDER} today"),
        ("call +44 20 7946 0958", f"call {PHONE_PLACEHOLDER}"),
        ("(555) 123-4567 after 5", f"{PHONE_PLACEHOLDER} after 5"),
        ("0612345678", PHONE_PLACEHOLDER),
        ("/users/jane%40example.com/orders", f"/users/{EMAIL_PLACEHOLDER}/orders"),
        ("price 1200 to 3400 eur", "price 1200 to 3400 eur"),
        ("procedure 12345", "procedure 12345"),
        ("", ""),
    ],
)
def test_scrub(text: str, expected: str) -> None:
    assert scrub(text) == expected
    assert scrub(scrub(text)) == scrub(text)


# The e-mail pattern on the text of the attack: a 500-character path of "%40"
# pieces made the old pattern try every split at every position (7 ms of CPU).
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/x" + "%40" * 166, "/x" + "%40" * 166),
        ("/" + "a%40" * 124, "/" + "a%40" * 124),
        ("/" + "a%40" * 120 + "b.co", "/" + "a%40" * 119 + EMAIL_PLACEHOLDER),
        ("/" + "a." * 240 + "@", "/" + "a." * 240 + "@"),
        ("/users/jane%40example.com/x%40y.org", f"/users/{EMAIL_PLACEHOLDER}/{EMAIL_PLACEHOLDER}"),
        (
            "mail jane@example.com or%40bob@example.org",
            f"mail {EMAIL_PLACEHOLDER} or%40{EMAIL_PLACEHOLDER}",
        ),
    ],
)
def test_scrub_of_separator_heavy_text(text: str, expected: str) -> None:
    assert scrub(text) == expected


def test_the_email_pattern_cannot_backtrack() -> None:
    """Why the e-mail pattern is linear in its input, held as a test of its text.

    A match may begin only where a run of local-part characters begins (or just
    after a ``%40``): inside a run the one-character lookbehind refuses at once.
    From a beginning, the local part stops at the first ``@``, ``%40`` or other
    character (``%`` counts only when no ``40`` follows), and the domain at the
    first character that is not a letter, digit, ``-`` or ``.``; so the text
    scanned from one beginning ends before the next beginning's, and every
    repetition is possessive (``++``): nothing is given back and tried again.
    Each character is read a bounded number of times, whatever its length.
    """
    pattern = EMAIL_PATTERN.pattern
    assert pattern.startswith(r"(?:(?<![") and r"|(?<=%40))" in pattern
    # Strip escapes, classes and group openers; what is left are the quantifiers.
    bare = re.sub(r"\\.", "", pattern)
    bare = re.sub(r"\[[^\]]*\]", "", bare)
    bare = re.sub(r"\(\?(?:<[=!]|[:=!])", "(", bare)
    quantifiers = re.findall(r"[+*?}]\+?", bare)
    assert quantifiers and all(q in ("++", "*+", "}+") for q in quantifiers), quantifiers
