"""``python -m demo_app``: serve the marketplace; ``python -m demo_app simulate``: a crowd."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from demo_app.app import create_app
from demo_app.secrets_file import DEFAULT_SECRET_PATH, load_or_create
from demo_app.server import serve_in_thread
from demo_app.simulate import MAX_VISITORS, answers_as_demo, crowd, is_loopback
from penchant import ConfigError

DEFAULT_DATABASE_URL = f"sqlite:///{Path(__file__).parent / 'demo.db'}"
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000


def _shown(url: str) -> str:
    """The database URL without its password, for the console."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _local_url(host: str, port: int) -> str:
    """Where this machine reaches a server listening on ``host``."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


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
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Interface to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535))
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
    """Serve the Radiant demo marketplace, personalized by penchant.

    ``simulate`` sends a crowd to the demo running at --host and --port, or to one of its own.
    """
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
    crowd_command = "python -m demo_app simulate --visitors 200"
    if (host, port) != (DEFAULT_HOST, DEFAULT_PORT):
        crowd_command += " --base-url " + _local_url(host, port)
    click.echo("  a crowd:   " + crowd_command)
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
    help="Database of an in-process demo; giving one starts the demo here (not with --base-url).",
)
@click.option(
    "--base-url",
    default=None,
    help="A demo already running on this machine.  [default: http://127.0.0.1:8000 if it answers]",
)
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
@click.pass_context
def simulate(
    ctx: click.Context,
    visitors: int,
    database_url: str,
    base_url: str | None,
    seed: int | None,
    workers: int,
    time_limit: float,
    holdout: float,
    secret_file: Path,
) -> None:
    """Replay plausible browsing sessions through the real HTTP endpoints.

    The crowd visits the demo running at --base-url, else the one serving at
    http://127.0.0.1:8000 (`python -m demo_app --port 8080 simulate` looks at 8080).
    When none answers there, or --database-url is given, it starts one in this process.
    """
    options: dict[str, Any] = {
        "visitors": visitors,
        "seed": seed,
        "workers": workers,
        "time_limit": time_limit,
    }
    defaults = (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)
    if base_url is None and ctx.get_parameter_source("database_url") in defaults:
        # A second server on the running demo's database would not be the demo one watches.
        served = ctx.find_root().params
        address = _local_url(served.get("host", DEFAULT_HOST), served.get("port", DEFAULT_PORT))
        if answers_as_demo(address):
            click.echo(f"the demo is running at {address}: the crowd visits it")
            if ctx.get_parameter_source("holdout") not in defaults:
                click.echo("  --holdout is ignored: the running demo keeps its own")
            base_url = address
        else:
            click.echo(f"no demo answers at {address}: starting one in this process")
    if base_url is not None:
        if not is_loopback(base_url):
            raise click.UsageError("--base-url must be a loopback address (127.0.0.1, localhost)")
        click.echo(f"simulating {visitors} visitors against {base_url}")
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
