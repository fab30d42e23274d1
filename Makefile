# The two commands a newcomer needs: `make run` and `make test`.
.PHONY: run simulate test lint typecheck unit

DIGITS ?= 1,1

run:
	@scripts/run

simulate:
	@scripts/bootstrap
	.venv/bin/hotline simulate flows/hotline.yaml --caller +48221234567 --at 2026-12-01T10:00+01:00 --digits $(DIGITS)

test:
	@scripts/bootstrap --test
	.venv/bin/hotline asterisk install
	$(MAKE) --no-print-directory lint typecheck unit

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck:
	.venv/bin/mypy --strict ivr routing yamlfile
	.venv/bin/mypy hotline

unit:
	.venv/bin/pytest -q -p no:cacheprovider
