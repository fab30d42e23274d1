"""The API over loopback against the real store: `store` (support/fixtures/stores.py) runs each test on SQLite
and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hotline.store.db import Store
from support.api_helpers import TOKEN, Api, serve


@pytest.fixture
async def api(store: Store) -> AsyncIterator[Api]:
    async with serve(store, [TOKEN]) as client:
        yield client
