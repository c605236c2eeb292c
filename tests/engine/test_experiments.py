from __future__ import annotations

import pytest

from penchant.engine.experiments import assign_variant


def test_assignment_is_stable_and_uniform() -> None:
    ids = [f"{i:032x}" for i in range(100_000)]
    first = [assign_variant(u, key="exp", holdout=0.1) for u in ids]
    assert first == [assign_variant(u, key="exp", holdout=0.1) for u in ids]
    share = first.count("holdout") / len(ids)
    assert share == pytest.approx(0.1, abs=0.01)


def test_changing_the_key_reshuffles() -> None:
    ids = [f"{i:032x}" for i in range(10_000)]
    a = [assign_variant(u, key="one", holdout=0.5) for u in ids]
    b = [assign_variant(u, key="two", holdout=0.5) for u in ids]
    same = sum(x == y for x, y in zip(a, b, strict=True)) / len(ids)
    assert 0.45 < same < 0.55


def test_zero_holdout_disables() -> None:
    assert {assign_variant(f"{i}", key="k", holdout=0.0) for i in range(1000)} == {"personalized"}
