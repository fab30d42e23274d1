# The two commands a newcomer needs: `make run` and `make test`; `make check` is the fast loop.
.PHONY: run simulate test check lint typecheck architecture unit fast

DIGITS ?= 1,1
PACKAGES = contacts yamlfile ivr routing hotline
#: the tests that need no real part (no Asterisk, PostgreSQL or Docker)
FAST = not asterisk and not postgres and not docker

run:
	@scripts/run

simulate:
	@scripts/bootstrap
	.venv/bin/hotline simulate flows/hotline.yaml --caller +48221234567 --at 2026-12-01T10:00+01:00 --digits $(DIGITS)

# everything: installs what the tests need, then lint, types, architecture and every test
test:
	@scripts/bootstrap --test
	.venv/bin/hotline asterisk install
	$(MAKE) --no-print-directory lint typecheck architecture unit

# the fast loop: lint, types, architecture and the tests that need no real part (under a minute)
check:
	@scripts/bootstrap
	$(MAKE) --no-print-directory lint typecheck architecture fast

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck:
	.venv/bin/mypy --strict $(PACKAGES) tests bench

architecture:
	.venv/bin/lint-imports --no-cache

unit:
	.venv/bin/pytest -q -p no:cacheprovider --hypothesis-profile=ci

fast:
	.venv/bin/pytest -q -p no:cacheprovider -m "$(FAST)"
