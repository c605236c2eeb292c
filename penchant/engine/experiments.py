"""Holdout assignment: which visitors see personalized content."""

from __future__ import annotations

import hashlib
from typing import Literal

__all__ = ["Variant", "assign_variant"]

Variant = Literal["personalized", "holdout"]


def assign_variant(user_id: str, *, key: str, holdout: float) -> Variant:
    """Deterministic and uniform: the same visitor and key always give the same variant.

    Changing ``key`` reshuffles every visitor.
    """
    if holdout <= 0.0:
        return "personalized"
    digest = hashlib.sha256(f"{key}|{user_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") / 2**64
    return "holdout" if bucket < holdout else "personalized"
