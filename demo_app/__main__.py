"""``python -m demo_app``: serve the marketplace; ``python -m demo_app simulate``: a crowd."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from demo_app.app import create_app
from demo_app.secrets_file import DEFAULT_SECRET_PATH, load_or_create
from demo_app.server import serve_in_thread
from demo_app.simulate import MAX_VISITORS, crowd, is_loopback
from penchant import ConfigError

DEFAULT_DATABASE_URL = f"sqlite:///{Path(__file__).parent / 'demo.db'}"


def _shown(url: str) -> str:
    """The database URL without its password, for the console."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _build(database_url: str, secret_file: Path, **settings: Any) -> tuple[Any, Any, Any]:
    secrets = load_or_create(secret_file)
    try:
        app, penchant = create_app(
            database_url=database_url,
            secret_key=secrets.secret_key,
            dashboard_user=secrets.dashboard_user,
            dashboard_password=secrets.dashboard_password,
            **settings,
        )
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    except Exception as exc:  # a database that cannot be reached: one line, no traceback
        raise click.ClickException(f"cannot start the demo: {exc}") from None
    return app, penchant, secrets


@click.group(invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--database-url",
    default=DEFAULT_DATABASE_URL,
    show_default="demo_app/demo.db",
    help="sqlite:///path or postgresql://user@host/db",
)
@click.option(
    "--holdout",
    default=0.1,
    show_default=True,
    type=click.FloatRange(0.0, 0.99),
    help="Share of visitors who see popular content (the A/B comparison group).",
)
@click.option(
    "--secret-file",
    default=DEFAULT_SECRET_PATH,
    show_default="demo_app/.secret",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where the demo keeps its generated secret and dashboard password.",
)
@click.pass_context
def main(
    ctx: click.Context,
    host: str,
    port: int,
    database_url: str,
    holdout: float,
    secret_file: Path,
) -> None:
    """Serve the Radiant demo marketplace, personalized by penchant."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    app, penchant, secrets = _build(database_url, secret_file, holdout=holdout)
    shown_host = f"[{host}]" if ":" in host else host
    base = f"http://{shown_host}:{port}"
    prefix = penchant.settings.prefix
    click.echo("Radiant, the penchant demo marketplace")
    click.echo(f"  site:      {base}/")
    click.echo(
        f"  dashboard: {base}{prefix}/dashboard  "
        f"(user {secrets.dashboard_user}, password {secrets.dashboard_password})"
    )
    click.echo(f"  database:  {_shown(database_url)}")
    click.echo("  a crowd:   python -m demo_app simulate --visitors 200 --base-url " + base)
    if not is_loopback(base):
        click.echo(
            "  note: listening beyond this machine; the dashboard password is all that guards it"
        )
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)


@main.command()
@click.option(
    "--visitors",
    default=100,
    show_default=True,
    type=click.IntRange(1, MAX_VISITORS),
    help="How many visitors to simulate.",
)
@click.option(
    "--database-url",
    default=DEFAULT_DATABASE_URL,
    show_default="demo_app/demo.db",
    help="Database of the in-process demo (ignored with --base-url).",
)
@click.option("--base-url", default=None, help="A demo already running on this machine.")
@click.option("--seed", default=None, type=int, help="Replay the same crowd.")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(1, 16))
@click.option(
    "--time-limit",
    default=600.0,
    show_default=True,
    type=click.FloatRange(1, 3600),
    help="Seconds.",
)
@click.option("--holdout", default=0.1, show_default=True, type=click.FloatRange(0.0, 0.99))
@click.option(
    "--secret-file",
    default=DEFAULT_SECRET_PATH,
    show_default="demo_app/.secret",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where the demo keeps its generated secret and dashboard password.",
)
def simulate(
    visitors: int,
    database_url: str,
    base_url: str | None,
    seed: int | None,
    workers: int,
    time_limit: float,
    holdout: float,
    secret_file: Path,
) -> None:
    """Replay plausible browsing sessions through the real HTTP endpoints."""
    options: dict[str, Any] = {
        "visitors": visitors,
        "seed": seed,
        "workers": workers,
        "time_limit": time_limit,
    }
    if base_url is not None:
        if not is_loopback(base_url):
            raise click.UsageError("--base-url must be a loopback address (127.0.0.1, localhost)")
        result = crowd(base_url, forwarded_for=False, **options)
        _report(result.as_dict(), None)
        return
    # The in-process demo believes X-Forwarded-For from loopback, so each visitor has an address.
    app, penchant, _ = _build(
        database_url, secret_file, holdout=holdout, trusted_proxies=("127.0.0.1",)
    )
    with serve_in_thread(app) as base:
        click.echo(f"simulating {visitors} visitors against {base} ({_shown(database_url)})")
        result = crowd(base, forwarded_for=True, **options)
        penchant.flush(timeout=30.0)
        health = penchant.health()
    _report(result.as_dict(), health)


def _report(counts: dict[str, float], health: dict[str, object] | None) -> None:
    for name, count in counts.items():
        click.echo(f"  {name.replace('_', ' '):<20}{count}")
    if health is not None:
        for name in ("accepted", "stored", "duplicates", "dropped", "in_flight"):
            value: object = health.get(name)
            if isinstance(value, dict):
                value = {k: v for k, v in value.items() if v} or 0
            if value is not None:
                click.echo(f"  {'writer ' + name.replace('_', ' '):<20}{value}")


if __name__ == "__main__":
    main(prog_name="python -m demo_app")
