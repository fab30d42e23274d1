"""`hotline contacts`, `hotline export`, `hotline db upgrade` and `hotline api`: the contact store from
the command line."""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any, TypeVar

import click
import structlog
from aiohttp import web
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.engine import make_url

from hotline.api.schemas import ContactOut, EventOut
from hotline.config import Config, ConfigError, LogConfig, check_store_url, load_config
from hotline.store.db import Store, open_store, upgrade
from hotline.store.errors import StoreError
from hotline.store.events import Contact

T = TypeVar("T")

#: The config file used when neither --config nor HOTLINE_CONFIG names one, if it exists.
DEFAULT_CONFIG = Path("hotline.yaml")
#: Contacts fetched per store query while exporting.
EXPORT_PAGE = 500
CSV_COLUMNS = (
    "id",
    "parent_id",
    "call_id",
    "started_at",
    "queued_at",
    "answered_at",
    "ended_at",
    "caller",
    "dialed",
    "customer_id",
    "language",
    "ivr_path",
    "queue",
    "agent",
    "wait_seconds",
    "talk_seconds",
    "outcome",
)
OUTCOME_STYLE = {
    "answered": "green",
    "callback": "cyan",
    "voicemail": "cyan",
    "transferred": "blue",
    "abandoned_queue": "red",
    "abandoned_ivr": "yellow",
}

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="HOTLINE_CONFIG",
    help="The service config (default: $HOTLINE_CONFIG, else ./hotline.yaml if there is one).",
)
db_option = click.option("--db", help="A database URL or an SQLite file, instead of the config's store.url.")


def _console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=True, emoji=False)


def _config(config_path: Path | None) -> Config:
    path = config_path
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    try:
        return load_config(path)
    except ConfigError as e:
        err = _console(stderr=True)
        for line in e.errors:
            err.print(escape(line), style="red")
        raise SystemExit(1) from None


def _store_url(config_path: Path | None, db: str | None) -> str:
    if db is None:
        return _config(config_path).store_url
    if "://" not in db:
        return f"sqlite+aiosqlite:///{Path(db).resolve()}"
    try:
        return check_store_url(db)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--db") from None


def _shown(url: str) -> str:
    """The URL without its password, fit for a terminal or a log."""
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `work`; a store error is a message and exit code 1, not a traceback."""
    try:
        return asyncio.run(work())
    except StoreError as e:
        _console(stderr=True).print(escape(str(e)), style="bold red")
        raise SystemExit(1) from None


async def _open_existing(url: str) -> Store:
    """The store at `url`, which must exist: a read never creates an empty database."""
    path = _sqlite_file(url)
    if path is not None and not path.exists():
        raise click.ClickException(
            f"there is no database at {path}; check --db or store.url, or create it with `hotline db upgrade`"
        )
    return await open_store(url, migrate=False)


def local_time(at: datetime | None) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S") if at is not None else "-"


def duration(seconds: float | None) -> str:
    """`75.4` -> `1:15`, `3725` -> `1:02:05`."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def short_path(nodes: list[str], keep: int = 2) -> str:
    """The IVR path with its middle left out when it is long: `main > lang > … > sales > queue`."""
    if len(nodes) > 2 * keep + 1:
        nodes = [*nodes[:keep], "…", *nodes[-keep:]]
    return " > ".join(nodes) or "-"


def contacts_table(contacts: list[Contact]) -> Table:
    table = Table(show_edge=False, header_style="bold")
    for name, justify in (
        ("started", "left"),
        ("caller", "left"),
        ("path", "left"),
        ("queue", "left"),
        ("agent", "left"),
        ("wait", "right"),
        ("talk", "right"),
        ("outcome", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for contact in contacts:
        outcome = contact.outcome or "-"
        table.add_row(
            local_time(contact.started_at),
            escape(contact.caller or "withheld"),
            escape(short_path(contact.ivr_path)),
            escape(contact.queue or "-"),
            escape(contact.agent or "-"),
            duration(contact.wait_seconds),
            duration(contact.talk_seconds),
            f"[{OUTCOME_STYLE.get(outcome, 'default')}]{escape(outcome)}[/]",
        )
    return table


@click.command("contacts")
@config_option
@db_option
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(1, 500), help="How many contacts."
)
@click.option("--number", help="Only this caller's contacts (any common format: +48 22 123-45-67).")
@click.option("--outcome", help="Only contacts that ended so: answered, abandoned_queue, callback ...")
@click.option("--queue", help="Only contacts queued in this queue.")
@click.option("--agent", help="Only contacts this agent answered.")
def contacts_command(
    config_path: Path | None,
    db: str | None,
    limit: int,
    number: str | None,
    outcome: str | None,
    queue: str | None,
    agent: str | None,
) -> None:
    """Show the most recent contacts, newest first, in local time."""
    url = _store_url(config_path, db)

    async def work() -> tuple[list[Contact], bool]:
        store = await _open_existing(url)
        try:
            page = await store.contacts(number=number, outcome=outcome, queue=queue, agent=agent, limit=limit)
        finally:
            await store.close()
        return page.items, page.next_cursor is not None

    contacts, more = _run(work)
    out = _console()
    if not contacts:
        out.print("no contacts" + (" match" if number or outcome or queue or agent else " yet"))
        return
    out.print(contacts_table(contacts))
    count = len(contacts)
    note = f"{count} contact{'s' if count != 1 else ''}"
    out.print(
        note + (f"; more with --limit {min(limit * 2, 500)}" if more and limit < 500 else ""), style="dim"
    )


def _since_until(value: str | None, name: str) -> datetime | None:
    """A date (local midnight) or a date and time (local time unless it has an offset)."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            at = datetime.combine(date.fromisoformat(value), time())
        else:
            at = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"'{value}' is not a date or a time; write it like 2026-11-01 or 2026-11-01T08:00+01:00",
            param_hint=name,
        ) from None
    return at if at.tzinfo is not None else at.astimezone()


def contact_row(contact: Contact) -> dict[str, Any]:
    """A contact as the API shows it: times in UTC ISO 8601."""
    return ContactOut.model_validate(contact, from_attributes=True).model_dump(mode="json")


def csv_row(contact: Contact) -> dict[str, Any]:
    row = contact_row(contact)
    row["ivr_path"] = " > ".join(contact.ivr_path)
    return {column: "" if row[column] is None else row[column] for column in CSV_COLUMNS}


async def _all_contacts(
    store: Store, since: datetime | None, until: datetime | None
) -> AsyncIterator[Contact]:
    cursor: str | None = None
    while True:
        page = await store.contacts(since=since, until=until, limit=EXPORT_PAGE, cursor=cursor)
        for contact in page.items:
            yield contact
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


async def export_contacts(
    store: Store, sink: IO[str], *, since: datetime | None, until: datetime | None, fmt: str, events: bool
) -> int:
    count = 0
    writer = csv.DictWriter(sink, fieldnames=CSV_COLUMNS) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    async for contact in _all_contacts(store, since, until):
        if writer is not None:
            writer.writerow(csv_row(contact))
        else:
            record = contact_row(contact)
            if events:
                timeline = await store.timeline(contact.id)
                record["events"] = [
                    EventOut.model_validate(event, from_attributes=True).model_dump(mode="json")
                    for event in timeline
                ]
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


@click.command("export")
@config_option
@db_option
@click.option("--since", required=True, help="From this date or time (local unless it has an offset).")
@click.option("--until", help="Up to (not including) this date or time.")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), required=True, help="csv or jsonl.")
@click.option("--events", is_flag=True, help="jsonl only: add each contact's events.")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="File (default: stdout)."
)
def export_command(
    config_path: Path | None,
    db: str | None,
    since: str,
    until: str | None,
    fmt: str,
    events: bool,
    output: Path | None,
) -> None:
    """Export contacts started in a time range, with their KPIs, newest first."""
    if events and fmt != "jsonl":
        raise click.BadParameter("events fit only in --format jsonl", param_hint="--events")
    start = _since_until(since, "--since")
    end = _since_until(until, "--until")
    if start is not None and end is not None and start > end:
        raise click.BadParameter(f"--since {since} is after --until {until}; swap them", param_hint="--since")
    url = _store_url(config_path, db)

    async def work() -> int:
        store = await _open_existing(url)
        try:
            if output is None:
                return await export_contacts(
                    store, sys.stdout, since=start, until=end, fmt=fmt, events=events
                )
            with output.open("w", encoding="utf-8", newline="") as sink:
                return await export_contacts(store, sink, since=start, until=end, fmt=fmt, events=events)
        finally:
            await store.close()

    count = _run(work)
    where = str(output) if output is not None else "stdout"
    _console(stderr=True).print(
        f"exported {count} contact{'s' if count != 1 else ''} to {where}", style="green"
    )


@click.group("db")
def db_group() -> None:
    """Manage the contact store's database."""


@db_group.command("upgrade")
@config_option
@db_option
def db_upgrade_command(config_path: Path | None, db: str | None) -> None:
    """Create the database or bring its schema up to date (safe to run again)."""
    url = _store_url(config_path, db)
    path = _sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)

    async def work() -> None:
        await upgrade(url)

    _run(work)
    _console().print(f"{_shown(url)}: the schema is up to date", style="green")


def configure_logging(settings: LogConfig) -> None:
    """structlog (and the standard logging of aiohttp) at the configured level, as JSON or for a terminal."""
    level = logging.getLevelNamesMapping()[settings.level.upper()]
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if settings.format == "json":
        processors += [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


@click.command("api")
@config_option
def api_command(config_path: Path | None) -> None:
    """Serve the HTTP API alone on the configured address (api.listen) until stopped."""
    from hotline.api import app_from_config

    config = _config(config_path)
    configure_logging(config.log)
    log = structlog.get_logger("hotline.api")
    if not config.api.tokens:
        log.warning("api.no_tokens", fix="add api.tokens to the config or set HOTLINE_API_TOKENS")
    app = app_from_config(config)

    async def announce(app: web.Application) -> None:
        log.info("api.listening", listen=config.api.listen, store=_shown(config.store_url))

    app.on_startup.append(announce)
    try:
        web.run_app(app, host=config.api.host, port=config.api.port, print=None, access_log=None)
    except StoreError as e:
        _console(stderr=True).print(escape(str(e)), style="bold red")
        raise SystemExit(1) from None
    except OSError as e:
        _console(stderr=True).print(f"cannot listen on {config.api.listen}: {e}", style="bold red")
        raise SystemExit(1) from None


COMMANDS = (contacts_command, export_command, db_group, api_command)
