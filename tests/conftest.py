"""The markers that say which real part a test needs, so `make check` can run the others alone:

- `asterisk`: the Asterisk 22 sandbox (any test using the `asterisk` fixture);
- `postgres`: a throwaway PostgreSQL cluster (the `postgresql` backend of `store_url`, or `pg_cluster`);
- `docker`: a Docker engine and compose (everything under tests/deploy).

A test that needs none of them runs in `make check`; `make test` runs every test.

Tests are laid out like the code (tests/ivr/ for ivr/, tests/hotline/store/ for hotline/store/...) and
import no other test module: what they share is in tests/support/, imported as `support.<module>`. The
shared fixtures, `asterisk` and the stores, are plugins loaded here, so every folder can use them."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

#: `make test` (and so CI) runs the hypothesis properties on a fixed seed per test, so a merge is
#: judged on the same examples every time; `make check` and plain pytest keep exploring new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)

pytest.register_assert_rewrite("support")  # a helper's failed assert shows its values too
pytest_plugins = ["support.fixtures.asterisk", "support.fixtures.stores"]

#: fixture -> the marker of the real part it needs
NEEDS = {"asterisk": "asterisk", "pg_cluster": "postgres"}
DEPLOY = Path(__file__).resolve().parent / "deploy"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        for fixture, marker in NEEDS.items():
            if fixture in fixtures:
                item.add_marker(getattr(pytest.mark, marker))
        if item.path.is_relative_to(DEPLOY):  # the compose files and the deployment itself
            item.add_marker(pytest.mark.docker)
