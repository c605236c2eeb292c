"""The ``penchant`` command: create the tables, monitor, purge, export and erase.

Every command takes ``--database-url`` (else ``DATABASE_URL``, else the default
SQLite file). Errors are one line on stderr: exit code 2 for bad arguments or
settings, 1 when the database cannot do what was asked.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import click

from penchant.config import ConfigError, Settings
from penchant.engine.report import render_report
from penchant.storage import changes, schema_version
from penchant.storage.reporting import experiment_report
from penchant.storage.retention import cutoff
from penchant.storage.store import Store, StoreError, describe_error

__all__ = ["main"]

_FINGERPRINT = re.compile(r"^[0-9a-f]{32}$")


class _Fail(click.ClickException):
    """A runtime failure: one line, exit code 1."""

    exit_code = 1


class _OneLineGroup(click.Group):
    """Print every error as one line on stderr, never a traceback."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            result = super().main(
                args=args,
                prog_name=prog_name or "penchant",
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except click.ClickException as exc:
            _exit(f"penchant: error: {exc.format_message()}", exc.exit_code)
        except click.Abort:
            _exit("penchant: aborted", 1)
        except Exception as exc:  # the last guard: a message, not a traceback
            _exit(f"penchant: error: {exc.__class__.__name__}: {exc}", 1)
        code = result if isinstance(result, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


def _exit(message: str, code: int) -> NoReturn:
    click.echo(message.splitlines()[0] if message else "penchant: error", err=True)
    sys.exit(code)


def _settings(database_url: str | None) -> Settings:
    try:
        if database_url is not None:
            return Settings.from_env(database_url=database_url)
        return Settings.from_env()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


@contextmanager
def _store(settings: Settings, *, schema: bool = True) -> Iterator[Store]:
    """The store of ``settings``; with ``schema``, only a database at the current schema.

    Only ``db upgrade`` (``schema=False``) creates anything: the other commands
    neither create a SQLite file nor tables, and say when there is nothing yet.
    """
    try:
        store = Store(settings.database_url)
    except StoreError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        if schema:
            _require_schema(store)
        yield store
    except StoreError as exc:
        raise _Fail(str(exc)) from None
    finally:
        store.dispose()


def _sqlite_file(store: Store) -> str | None:
    """The file of a SQLite database (absolute), None for PostgreSQL or memory."""
    name = store.url.database
    if store.dialect != "sqlite" or name in (None, "", ":memory:"):
        return None
    return os.path.abspath(str(name))


def _require_schema(store: Store) -> None:
    path = _sqlite_file(store)
    if path is not None and not os.path.exists(path):
        raise _Fail(
            f"no database at {path} yet: nothing has been stored "
            "(penchant creates it on the first page view, or run `penchant db upgrade`)"
        )
    state = schema_version.current(store)
    if state.is_empty:
        raise _Fail(
            f"{store.display_url} has no penchant tables yet: nothing has been stored "
            "(penchant creates them on first use, or run `penchant db upgrade`)"
        )
    if not state.is_current:
        raise _Fail(
            f"{store.display_url} is at schema revision {state.revision}, this penchant "
            f"needs {state.head}: run `penchant db upgrade`"
        )


def _fingerprint(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    value = value.strip().lower()
    if not _FINGERPRINT.match(value):
        raise click.BadParameter("expected 32 hexadecimal characters")
    return value


_NOW = "penchant.now"  # ctx.meta key (meta is shared by the group and its commands)


def _given_now(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """Keep ``--now`` (naive UTC, as stored) for :func:`_now`."""
    if value is None:
        return
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            f"expected an ISO 8601 timestamp such as 2026-12-07T12:00:00, got {value!r}"
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    ctx.meta[_NOW] = moment


def _now() -> datetime:
    """What commands compare with: ``--now`` when given, else the real clock."""
    ctx = click.get_current_context(silent=True)
    given = ctx.meta.get(_NOW) if ctx is not None else None
    return given if isinstance(given, datetime) else datetime.now(UTC).replace(tzinfo=None)


database_url_option = click.option(
    "--database-url",
    metavar="URL",
    default=None,
    help="sqlite:///file.db or postgresql://user@host/name (default: $DATABASE_URL).",
)


@click.group(cls=_OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--now",
    metavar="ISO-TIMESTAMP",
    hidden=True,  # for tests: the moment every command compares with
    expose_value=False,
    callback=_given_now,
    help="Take this moment (UTC unless it carries an offset) as now.",
)
def main() -> None:
    """penchant: personalization for anonymous visitors (operator commands)."""


@main.group()
def db() -> None:
    """The database schema: where it stands, and bringing it up to date."""


@db.command("upgrade")
@database_url_option
def db_upgrade(database_url: str | None) -> None:
    """Create the tables, or migrate them with their data, to the current schema.

    Safe to run again, and from several hosts at once.
    """
    settings = _settings(database_url)
    with _store(settings, schema=False) as store:
        before, after = schema_version.upgrade(store)
        if before.is_empty:
            click.echo(f"created the tables at revision {after.revision} in {store.display_url}")
        elif before.revision == after.revision:
            click.echo(f"{store.display_url} is already at revision {after.revision}")
        else:
            click.echo(
                f"upgraded {store.display_url} from revision {before.revision} to {after.revision}"
            )


@db.command("current")
@database_url_option
def db_current(database_url: str | None) -> None:
    """Where the database's schema stands (exit 1 unless it is current)."""
    settings = _settings(database_url)
    with _store(settings, schema=False) as store:
        path = _sqlite_file(store)
        if path is not None and not os.path.exists(path):
            raise _Fail(
                f"no database at {path} yet (revision: none, needs {schema_version.head()})"
            )
        state = schema_version.current(store)
    if state.is_current:
        click.echo(f"{store.display_url}: revision {state.revision} (current)")
        return
    where = "none (no tables)" if state.is_empty else state.revision
    raise _Fail(
        f"{store.display_url}: revision {where}, this penchant needs {state.head}: "
        "run `penchant db upgrade`"
    )


@main.command("init-db")
@database_url_option
def init_db(database_url: str | None) -> None:
    """The same as `penchant db upgrade` (safe to run again)."""
    click.get_current_context().invoke(db_upgrade, database_url=database_url)


@main.command()
@database_url_option
@click.option("--days", type=click.IntRange(min=1), default=7, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of tables.")
def stats(database_url: str | None, days: int, as_json: bool) -> None:
    """Interactions per day and type; visitors with more than 5 interactions."""
    settings = _settings(database_url)
    since = _now() - timedelta(days=days)
    with _store(settings) as store:
        daily = store.daily_counts(since)
        engaged = store.engaged_visitors(since, minimum=5)
        dead = store.dead_letter_count()
    if as_json:
        payload = {
            "since": since.isoformat(),
            "days": days,
            "daily": [{"date": d, "interaction_type": t, "count": n} for d, t, n in daily],
            "engaged_visitors": [{"user_id": u, "interactions": n} for u, n in engaged],
            "dead_letters": dead,
        }
        click.echo(json.dumps(payload, sort_keys=True))
        return
    click.echo(f"Interactions per day and type, last {days} days:")
    if not daily:
        click.echo("  (none)")
    for day, kind, count in daily:
        click.echo(f"  {day}  {kind:<12} {count:>8}")
    click.echo("Visitors with more than 5 interactions:")
    if not engaged:
        click.echo("  (none)")
    for user_id, count in engaged:
        click.echo(f"  {user_id}  {count:>8}")
    click.echo(f"Dead-lettered rows: {dead}")


@main.command()
@database_url_option
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=None,
    help="Keep this many days (default: INTERACTION_RETENTION_DAYS, 90).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
def purge(database_url: str | None, days: int | None, dry_run: bool) -> None:
    """Delete interactions (and stale affinities) older than the retention window."""
    settings = _settings(database_url)
    keep = days if days is not None else settings.retention_days
    before = cutoff(keep, now=_now())
    with _store(settings) as store:
        result = store.purge_counts(before) if dry_run else store.purge(before)
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"{verb} {result.interactions} interactions, {result.affinities} affinities, "
        f"{result.dead_letters} dead-lettered rows older than {before.isoformat()}"
    )


@main.command()
@database_url_option
@click.argument("fingerprint", callback=_fingerprint)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the JSON here instead of standard output.",
)
def export(database_url: str | None, fingerprint: str, output: str | None) -> None:
    """Print everything stored about one visitor as JSON (data portability)."""
    settings = _settings(database_url)
    with _store(settings) as store:
        data = store.export(fingerprint)
    text = json.dumps(data, indent=2, sort_keys=True)
    if output is None:
        click.echo(text)
        return
    try:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    except OSError as exc:
        raise _Fail(f"cannot write {output}: {exc.strerror}") from None
    interactions = data["interactions"]
    count = len(interactions) if isinstance(interactions, list) else 0
    click.echo(f"wrote {count} interactions to {output}", err=True)


@main.command()
@database_url_option
@click.argument("fingerprint", callback=_fingerprint)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase(database_url: str | None, fingerprint: str, yes: bool) -> None:
    """Delete everything stored about one visitor (right to erasure)."""
    settings = _settings(database_url)
    with _store(settings) as store:
        if not yes:
            click.confirm(f"Erase every row of visitor {fingerprint}?", abort=True)
        deleted = store.erase(fingerprint)
        # running workers drop their cached copy of this visitor's profile
        changes.note_changes(store, [fingerprint], _now())
    click.echo(f"erased {deleted} rows of visitor {fingerprint}")


@main.command()
@database_url_option
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True)
@click.option(
    "--minimum",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Visitors (or exposures) each variant needs before a difference is read as a result.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of a table.")
def report(database_url: str | None, days: int, minimum: int, as_json: bool) -> None:
    """Personalized against holdout: click-through, conversion, paths to a form submission.

    Variants are recomputed from PENCHANT_HOLDOUT and the experiment key, as assigned.
    """
    settings = _settings(database_url)
    with _store(settings) as store:
        try:
            result = experiment_report(
                store,
                _now(),
                days=days,
                key=settings.experiment_key,
                holdout=settings.holdout,
                minimum=minimum,
                window=settings.attribution_window,
            )
        except StoreError:
            raise
        except Exception as exc:
            raise _Fail(f"cannot read the report: {describe_error(exc)}") from None
    if as_json:
        click.echo(json.dumps(result.as_dict(), sort_keys=True))
    else:
        click.echo(render_report(result))


if __name__ == "__main__":
    main()
