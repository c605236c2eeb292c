"""The demo's own secrets, made at first start and kept in a git-ignored file."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_SECRET_PATH", "DemoSecrets", "load_or_create"]

DEFAULT_SECRET_PATH = Path(__file__).parent / ".secret"


@dataclass(frozen=True, slots=True)
class DemoSecrets:
    secret_key: str
    dashboard_user: str
    dashboard_password: str


def load_or_create(path: Path = DEFAULT_SECRET_PATH) -> DemoSecrets:
    """Read the secrets, or create them (readable by the owner only) if the file is missing.

    Two processes starting at once agree: the loser reads the winner's file.
    """
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    fresh = DemoSecrets(
        secret_key=secrets.token_urlsafe(32),
        dashboard_user="admin",
        dashboard_password=secrets.token_urlsafe(12),
    )
    body = json.dumps(
        {
            "secret_key": fresh.secret_key,
            "dashboard_user": fresh.dashboard_user,
            "dashboard_password": fresh.dashboard_password,
        },
        indent=2,
    )
    # Written to a private temporary file, then linked into place: a reader never
    # sees a half-written file, and linking fails if another process won the race.
    temporary = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(body + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            return _read(path)
    finally:
        temporary.unlink(missing_ok=True)
    return fresh


def _read(path: Path) -> DemoSecrets:
    data = json.loads(path.read_text(encoding="utf-8"))
    return DemoSecrets(
        secret_key=str(data["secret_key"]),
        dashboard_user=str(data.get("dashboard_user", "admin")),
        dashboard_password=str(data["dashboard_password"]),
    )
