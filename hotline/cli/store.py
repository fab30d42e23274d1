"""`hotline contacts`, `hotline export`, `hotline db upgrade` and `hotline api`: the contact store from
the command line."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import AsyncIterator
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any, TypeVar

import click
import structlog
from aiohttp import web
from rich.markup import escape
from rich.table import Table

from hotline.api import app_from_config
from hotline.api.schemas import ContactOut, EventOut
from hotline.cli.common import (
    config_option,
    configure_logging,
    console,
    db_option,
    load,
    open_existing,
    run,
    shown,
    sqlite_file,
    store_url,
)
from hotline.store.db import Store, upgrade
from hotline.store.errors import StoreError
from hotline.store.events import Contact

T = TypeVar("T")

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
    url = store_url(config_path, db)

    async def work() -> tuple[list[Contact], bool]:
        store = await open_existing(url)
        try:
            page = await store.contacts(number=number, outcome=outcome, queue=queue, agent=agent, limit=limit)
        finally:
            await store.close()
        return page.items, page.next_cursor is not None

    contacts, more = run(work)
    out = console()
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
    url = store_url(config_path, db)

    async def work() -> int:
        store = await open_existing(url)
        try:
            if output is None:
                return await export_contacts(
                    store, sys.stdout, since=start, until=end, fmt=fmt, events=events
                )
            with output.open("w", encoding="utf-8", newline="") as sink:
                return await export_contacts(store, sink, since=start, until=end, fmt=fmt, events=events)
        finally:
            await store.close()

    count = run(work)
    where = str(output) if output is not None else "stdout"
    console(stderr=True).print(
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
    url = store_url(config_path, db)
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)

    async def work() -> None:
        await upgrade(url)

    run(work)
    console().print(f"{shown(url)}: the schema is up to date", style="green")


@click.command("api")
@config_option
def api_command(config_path: Path | None) -> None:
    """Serve the HTTP API alone on the configured address (api.listen) until stopped."""

    config = load(config_path)
    configure_logging(config.log)
    log = structlog.get_logger("hotline.api")
    if not config.api.tokens:
        log.warning("api.no_tokens", fix="add api.tokens to the config or set HOTLINE_API_TOKENS")
    app = app_from_config(config)

    async def announce(app: web.Application) -> None:
        log.info("api.listening", listen=config.api.listen, store=shown(config.store_url))

    app.on_startup.append(announce)
    try:
        web.run_app(app, host=config.api.host, port=config.api.port, print=None, access_log=None)
    except StoreError as e:
        console(stderr=True).print(escape(str(e)), style="bold red")
        raise SystemExit(1) from None
    except OSError as e:
        console(stderr=True).print(f"cannot listen on {config.api.listen}: {e}", style="bold red")
        raise SystemExit(1) from None


COMMANDS = (contacts_command, export_command, db_group, api_command)
