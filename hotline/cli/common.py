"""What the `hotline` commands share: the consoles, the --config and --db options, reading the config,
opening the store, and the service's logging."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click
import structlog
from rich.console import Console
from rich.markup import escape
from sqlalchemy.engine import make_url

from hotline.config import Config, ConfigError, LogConfig, check_store_url, load_config
from hotline.store.db import Store, open_store
from hotline.store.errors import StoreError

T = TypeVar("T")

#: The config file used when neither --config nor HOTLINE_CONFIG names one, if it exists.
DEFAULT_CONFIG = Path("hotline.yaml")

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="HOTLINE_CONFIG",
    help="The service config (default: $HOTLINE_CONFIG, else ./hotline.yaml if there is one).",
)
db_option = click.option("--db", help="A database URL or an SQLite file, instead of the config's store.url.")


def console(stderr: bool = False) -> Console:
    """A terminal console that prints text as it is: no emoji codes (a position `:100:` stays text)."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True, emoji=False)


out = console()
err = console(stderr=True)


def load(config_path: Path | None) -> Config:
    path = config_path
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    try:
        return load_config(path)
    except ConfigError as e:
        to = console(stderr=True)
        for line in e.errors:
            to.print(escape(line), style="red")
        raise SystemExit(1) from None


def store_url(config_path: Path | None, db: str | None) -> str:
    if db is None:
        return load(config_path).store_url
    if "://" not in db:
        return f"sqlite+aiosqlite:///{Path(db).resolve()}"
    try:
        return check_store_url(db)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--db") from None


def shown(url: str) -> str:
    """The URL without its password, fit for a terminal or a log."""
    return make_url(url).render_as_string(hide_password=True)


def sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `work`; a store error is a message and exit code 1, not a traceback."""
    try:
        return asyncio.run(work())
    except StoreError as e:
        console(stderr=True).print(escape(str(e)), style="bold red")
        raise SystemExit(1) from None


async def open_existing(url: str) -> Store:
    """The store at `url`, which must exist: a read never creates an empty database."""
    path = sqlite_file(url)
    if path is not None and not path.exists():
        raise click.ClickException(
            f"there is no database at {path}; check --db or store.url, or create it with `hotline db upgrade`"
        )
    return await open_store(url, migrate=False)


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
