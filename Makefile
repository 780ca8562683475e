# gridgate: the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")

.PHONY: testbed-dirac testbed-dirac-down testbed-dirac-smoke testbed-dirac-checks demo test env lint bench dev testbed-idp testbed-idp-down clean
.PHONY: testbed-diracx testbed-diracx-down testbed-storage testbed-storage-down testbed-rucio testbed-rucio-down testbed-rucio-smoke

env:  ## create the virtual environment from the lock file
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

FACILITY ?= local
# Where testbeds keep their state: a shared testbed (GRIDGATE_TESTBED_DIR) serves worktrees too.
TESTBED_DIR = $(or $(GRIDGATE_TESTBED_DIR),var/testbeds)
WORKFLOW ?= hello-world
# A containerised workflow (concordia-corsika) needs the Docker testbed: its registry and the
# base image of recipes (built once per machine).
DEMO_IMAGES = $(if $(filter hello-world,$(WORKFLOW)),,--image-registry 127.0.0.1:5000 --image-base $$(testbeds/docker/up.sh >/dev/null && testbeds/docker/base-image.sh))
demo: env  ## run a workflow through all six services and print what happened (FACILITY=local|dirac-testbed, WORKFLOW=hello-world|concordia-corsika)
ifeq ($(FACILITY),dirac-testbed)
	@testbeds/dirac/up.sh >/dev/null
	@$(UV) run --frozen gridgate demo --data-dir .gridgate/demo-dirac --dirac-testbed $(TESTBED_DIR)/dirac/env.sh --workflow $(WORKFLOW) $(DEMO_IMAGES)
else ifeq ($(FACILITY),diracx-testbed)
	@testbeds/diracx/up.sh >/dev/null
	@$(UV) run --frozen gridgate demo --data-dir .gridgate/demo-diracx --diracx-testbed
else ifeq ($(FACILITY),local)
	@$(UV) run --frozen gridgate demo --data-dir .gridgate/demo --workflow $(WORKFLOW) $(DEMO_IMAGES)
else
	@echo "FACILITY must be local, dirac-testbed or diracx-testbed" >&2; exit 2
endif

dev: env  ## serve the API on http://127.0.0.1:8000 with all services in one process
	@$(UV) run --frozen gridgate dev

test: env lint  ## the test suite against real RabbitMQ, SQLite, PostgreSQL and the testbeds (all but the long tests)
	@$(UV) run --frozen pytest -m "not long" --durations=60

.PHONY: warm-images
warm-images: env  ## build the service images once, so the deploy tests' builds hit the layer cache (CI runs it beside the demo)
	@$(UV) run --frozen python -m gridgate.testing.warm_images

.PHONY: test-long
test-long: env  ## the long tests left out of make test: token lifetimes waited out, more crash points
	@$(UV) run --frozen pytest -m long -rA

lint: env
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .
	@$(UV) run --frozen lint-imports
	@$(UV) run --frozen mypy libs/*/src services/*/src src

CHAOS_JOBS ?= 300
CHAOS_KILLS ?= 30
.PHONY: chaos
chaos: env  ## the long chaos run (tests/chaos): 300 jobs, 30 kills, SQLite, PostgreSQL, 2 gateways + 2 submitters
	@GRIDGATE_CHAOS_JOBS=$(CHAOS_JOBS) GRIDGATE_CHAOS_KILLS=$(CHAOS_KILLS) GRIDGATE_CHAOS_REPLICAS=1 \
		GRIDGATE_CHAOS_RECOVERY_S=$${GRIDGATE_CHAOS_RECOVERY_S:-420} $(UV) run --frozen pytest tests/chaos -m chaos -rA

bench: env  ## POST /api/jobs against a bare FastAPI + asyncpg + aio-pika handler (gateway on PostgreSQL, then SQLite)
	@command -v wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }
	@$(UV) run --frozen python bench/post_jobs.py
	@$(UV) run --frozen python bench/post_jobs.py --sqlite

.PHONY: bench-sse
bench-sse: env  ## 1,000 concurrent SSE streams on one gateway: RSS, latency event published -> received (SQLite, PostgreSQL)
	@$(UV) run --frozen python bench/sse.py

.PHONY: bench-schedules
bench-schedules: env  ## the scheduler with 10,000 schedules (one firing a second): cost per tick, drift (SQLite, PostgreSQL)
	@$(UV) run --frozen python bench/schedules.py

.PHONY: bench-observations
bench-observations: env  ## the gateway applying monitor observations (PostgreSQL, SQLite; no broker): rate and CPU each
	@$(UV) run --frozen python bench/observations.py
	@$(UV) run --frozen python bench/observations.py --sqlite

.PHONY: bench-footprint
bench-footprint: env  ## each service's and gridgate dev's time to ready and idle RSS (issue 16: P4, start-up)
	@$(UV) run --frozen python bench/footprint.py

.PHONY: bench-scale
bench-scale: env  ## 100,000 jobs in flight: the monitor's cycle and the gateway's applied observations/s (PostgreSQL)
	@$(UV) run --frozen python bench/scale.py

.PHONY: bench-webhooks
bench-webhooks: env  ## webhook deliveries with 100 subscriptions: deliveries/s, latency p50/p99 (SQLite, PostgreSQL)
	@$(UV) run --frozen python bench/webhooks.py

.PHONY: bench-dirac bench-diracx
bench-diracx: env  ## 200 jobs through gridgate vs with diracx-client; status of 1k/10k jobs (DiracX testbed)
	@testbeds/diracx/up.sh >/dev/null
	@$(UV) run --frozen python bench/diracx.py

bench-dirac: env  ## 200 jobs through gridgate vs one by one with the DIRAC API; status of 1k/10k jobs (DIRAC testbed)
	@testbeds/dirac/up.sh >/dev/null
	@$(UV) run --frozen python bench/dirac_submission.py
	@$(UV) run --frozen python bench/dirac_status.py

testbed-idp:
	@testbeds/idp/up.sh

testbed-idp-down:
	@testbeds/idp/down.sh

testbed-storage:  ## the WebDAV storage testbed (Apache httpd + mod_dav) on :8090 and :8443
	@testbeds/storage/up.sh

testbed-storage-down:
	@testbeds/storage/down.sh

testbed-rucio: testbed-storage  ## a real Rucio server on :8089 with RSEs LOCAL_DISK and WEBDAV-LOCAL
	@testbeds/rucio/up.sh

testbed-rucio-down:
	@testbeds/rucio/down.sh

testbed-rucio-smoke: testbed-rucio  ## the official Rucio client against both RSEs
	@testbeds/rucio/smoke.sh

clean:  ## stop the testbeds, then remove local state
	-testbeds/dirac/down.sh; testbeds/diracx/down.sh; testbeds/rucio/down.sh --purge; testbeds/storage/down.sh; testbeds/idp/down.sh; testbeds/rabbitmq/down.sh
	rm -rf .gridgate var

testbed-dirac:  ## a real DIRAC 8 server on loopback (idempotent)
	@testbeds/dirac/up.sh

testbed-diracx:  ## a DiracX 0.7.0 server (DIRAC 9 line) on loopback (idempotent)
	@testbeds/diracx/up.sh

testbed-diracx-down:
	@testbeds/diracx/down.sh

testbed-dirac-down:
	@testbeds/dirac/down.sh

testbed-dirac-smoke: testbed-dirac
	@testbeds/dirac/smoke.sh

testbed-dirac-checks: testbed-dirac
	@testbeds/dirac/api_checks.sh && testbeds/dirac/local_ca_check.sh
