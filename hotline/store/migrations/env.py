"""Alembic environment for the contact store.

`hotline db upgrade` (hotline.store.db.upgrade) hands a connection in `config.attributes["connection"]`.
Run by hand, alembic reads the URL from `-x url=...` or the config's `sqlalchemy.url`.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from hotline.store.tables import metadata

config = context.config


def run_with(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def url_from_config() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("no database URL: pass -x url=sqlite+aiosqlite:///path/hotline.db")
    return url


def run_offline() -> None:
    context.configure(url=url_from_config(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_online_async() -> None:
    from hotline.store.db import _create_engine, store_url

    engine = _create_engine(store_url(url_from_config()), busy_timeout=30.0, command_timeout=300.0)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(run_with)
            await conn.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_offline()
elif (given := config.attributes.get("connection")) is not None:
    run_with(given)
else:
    asyncio.run(run_online_async())
