# gridgate: the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")

.PHONY: demo test env lint bench dev testbed-idp testbed-idp-down clean

env:  ## create the virtual environment from the lock file
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

demo: env  ## run hello-world through all five services and print what happened
	@$(UV) run --frozen gridgate demo --data-dir .gridgate/demo

dev: env  ## serve the API on http://127.0.0.1:8000 with all services in one process
	@$(UV) run --frozen gridgate dev

test: env lint  ## the whole test suite against real RabbitMQ, SQLite, PostgreSQL and the IdP testbed
	@$(UV) run --frozen pytest

lint: env
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .
	@$(UV) run --frozen lint-imports
	@$(UV) run --frozen mypy libs/*/src services/*/src src

bench: env  ## POST /api/jobs against a bare FastAPI + asyncpg + aio-pika handler
	@$(UV) run --frozen python bench/post_jobs.py

testbed-idp:
	@testbeds/idp/up.sh

testbed-idp-down:
	@testbeds/idp/down.sh

clean:
	rm -rf .gridgate var
