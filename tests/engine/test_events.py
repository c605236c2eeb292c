"""Interactions keep every field as given; event ids are 32 hex characters, unique."""

from __future__ import annotations

import os
import re
import warnings
from datetime import datetime

import pytest

from penchant.engine.events import Interaction, new_event_id

HEX32 = re.compile(r"[0-9a-f]{32}")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_process_draws_a_new_prefix_and_restarts_its_counter() -> None:
    """A forked worker's ids never repeat its parent's: new prefix, counter from 0."""
    parent = new_event_id()
    read, write = os.pipe()
    with warnings.catch_warnings():
        # forking a multi-threaded test process warns; the child only writes one line
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write, new_event_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read().decode()
    os.waitpid(pid, 0)
    assert HEX32.fullmatch(child), child
    assert child[16:] == "0" * 16
    assert child[:16] != parent[:16]


@pytest.mark.parametrize("extra_data", [None, {"categories": [3, 4]}])
def test_interaction_keeps_every_field(extra_data: dict[str, object] | None) -> None:
    """Each field reads back exactly what the constructor was given."""
    at = datetime(2026, 3, 4, 5, 6, 7)
    event = Interaction(
        "visitor-1", "session-1", "view", "procedure", 42, at, "ab" * 16, extra_data
    )
    assert (
        event.user_id,
        event.session_id,
        event.interaction_type,
        event.target_type,
        event.target_id,
        event.timestamp,
        event.event_id,
        event.extra_data,
    ) == ("visitor-1", "session-1", "view", "procedure", 42, at, "ab" * 16, extra_data)


def test_interaction_extra_data_defaults_to_none() -> None:
    """Without extra data, ``extra_data`` is None and the rest is kept."""
    event = Interaction("v", "s", "click", "page", None, datetime(2026, 1, 1), "e" * 32)
    assert event.extra_data is None
    assert event.session_id == "s"
    assert event.event_id == "e" * 32


def test_event_ids_share_a_prefix_and_count_up() -> None:
    """Ids of one process: 16 hex of prefix, then a 16-hex counter that goes up by one."""
    first, second = new_event_id(), new_event_id()
    assert HEX32.fullmatch(first) and HEX32.fullmatch(second)
    assert first[:16] == second[:16]
    assert int(second[16:], 16) == int(first[16:], 16) + 1
