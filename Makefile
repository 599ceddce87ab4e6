.PHONY: run test lint fmt typecheck lock check-deploy

run:  ## run the console, its database, broker, worker and the Braze sandbox
	scripts/run

test:  ## run the whole test suite (unit, integration and browser)
	scripts/test

lint:  ## ruff (lint and format check) and mypy
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy .

fmt:
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

lock:  ## re-resolve requirements.lock from pyproject.toml (needs network to PyPI)
	scripts/lock
