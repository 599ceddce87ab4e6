.PHONY: run serve test test-fast lint fmt lock bench-preview bench-limiter bench-audit bench-search bench-catalog-mirror bench-catalog-sync bench-bulk bench-bulk-smoke bench-web

run:  ## run the console, its database, broker, worker and the Braze sandbox
	scripts/run

# The web tier under gunicorn (production settings come from the environment; run
# `manage.py collectstatic` and the migrations first). docs/deploy.md has every process.
serve:  ## the web tier under gunicorn, as in production (docs/deploy.md)
	.venv/bin/python -m console.processes web .venv/bin/gunicorn -c console/gunicorn_config.py console.wsgi

test:  ## run the whole test suite (unit, integration and browser)
	scripts/test

# The markers are declared in pyproject.toml; a test that drives Chromium or takes more than a
# few seconds carries one, so this lane is what to run between edits (make test before a merge).
test-fast:  ## the suite without the browser tests and the slow ones
	scripts/test -m "not browser and not slow"

lint:  ## ruff (lint and format check) and mypy
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
# mypy's Django plugin imports the settings, which need DEBUG or a SECRET_KEY.
	DEBUG=1 .venv/bin/mypy .

fmt:
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

lock:  ## re-resolve requirements.lock and requirements-production.lock (needs network to PyPI)
	scripts/lock

bench-limiter:  ## several processes drive one Braze limit group against the sandbox (S=6, 3 algorithms; RUNS=10 repeats them)
	.venv/bin/python scripts/bench_limiter.py --runs $(or $(RUNS),1)

N ?= 1000000
bench-preview:  ## p95 render time of a 50 KB template with nested Content Blocks, as one person
	.venv/bin/python scripts/bench_preview.py

bench-audit:  ## audit list/search p95, CSV export rate and memory, verify_audit rate over N entries (N=1000000; KEEP=DIR keeps and reuses the database)
	KEEP=$(KEEP) scripts/bench-audit $(N)

bench-catalog-mirror:  ## item list/sort/filter/search p95 vs 150 ms over N mirrored items in 4 catalogs (N=1000000; KEEP=/tmp/mirror-bench-NAME keeps the load)
	scripts/bench-catalog mirror --items $(N) $(if $(KEEP),--keep $(KEEP))

SEARCH_N ?= 10000
bench-search:  ## content search page p95 over SEARCH_N content versions (10,000), against 200 ms
	scripts/bench-search $(SEARCH_N)

SYNC_N ?= 20000
bench-catalog-sync:  ## a full catalog sync against the sandbox at S=6: achieved / read ceiling
	scripts/bench-catalog sync --items $(SYNC_N) --scale 6

bench-bulk:  ## bulk catalog jobs end to end against the sandbox (S=6, 4 workers, 3 runs per scenario)
	scripts/bench-bulk --scale 6 --runs 3

bench-bulk-smoke:  ## the same scenarios quickly (S=30, one run each)
	scripts/bench-bulk --scale 30 --runs 1

bench-web:  ## 50 simulated staff (Locust) on gunicorn while a bulk job runs: page/fragment p95, errors, U vs alone
	scripts/bench-web
