"""Shared fixtures: a throwaway PostgreSQL cluster for the session, and store URLs for both backends;
and the markers that say which real part a test needs, so `make check` can run the others alone:

- `asterisk`: the Asterisk 22 sandbox (any test using the `asterisk` fixture);
- `postgres`: a throwaway PostgreSQL cluster (the `postgresql` backend of `store_url`, or `pg_cluster`);
- `docker`: a Docker engine and compose (tests/deploy).

A test that needs none of them runs in `make check`; `make test` runs every test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hotline.store.db import Store, open_store
from hotline.testing.pg import Cluster

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

#: fixture -> the marker of the real part it needs
NEEDS = {"asterisk": "asterisk", "pg_cluster": "postgres"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        for fixture, marker in NEEDS.items():
            if fixture in fixtures:
                item.add_marker(getattr(pytest.mark, marker))
        if "deploy" in item.path.parts:  # the compose files and the deployment itself
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A PostgreSQL server on a free loopback port, started once; a test may stop() and start() it."""
    try:
        cluster = Cluster.create()
    except Exception as e:
        pytest.fail(f"could not start a throwaway PostgreSQL for the tests: {e}", pytrace=False)
    yield cluster
    cluster.destroy()


def _url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'data' / 'hotline.db'}"
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    if not cluster.running():
        cluster.start()
    return cluster.url(cluster.create_database())


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file in tmp_path, or a fresh PostgreSQL database."""
    return _url(request.param, request, tmp_path)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """A migrated store on each backend, closed after the test."""
    opened = await open_store(store_url)
    yield opened
    await opened.close()
