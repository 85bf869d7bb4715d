# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

# Tests take their servers from these URLs (testcontainers starts them where unset and Docker exists).
export TEST_POSTGRES_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432
export TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
export TEST_RABBITMQ_URL ?= amqp://guest:guest@127.0.0.1:5672/

# A Debian package, refreshing the package lists only when the first try fails.
apt_install = DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(1) >/dev/null \
	|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(1) >/dev/null; }

.PHONY: install servers browser web-checks kubernetes-checks edge prometheus run test test-quick test-faults bench soak compose-env

install:  ## everything from the lock file, into .venv
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) sync --frozen --python 3.11

servers: install  ## PostgreSQL, Redis and RabbitMQ answering (make run does this first): each started where installed, else installed from Debian's packages (as root) or run from compose's servers profile (where Docker runs)
	$(UV) run --frozen --no-sync python -m devstack servers

run: install edge $(if $(PROMETHEUS_PORT),prometheus)  ## the whole system on this machine, its servers started or installed first, with a demo; Ctrl-C stops it (PROMETHEUS_PORT=9090: Prometheus too)
	$(UV) run --frozen --no-sync python -m devstack run

compose-env: install  ## .env for docker compose: fresh keys and passwords (never committed)
	$(UV) run --frozen --no-sync python -m devstack compose-env

edge:  ## nginx with its Lua module, the public entry, from Debian's packages (deploy/edge/)
	@[ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] || $(call apt_install,nginx-light libnginx-mod-http-lua)

prometheus:  ## Prometheus and promtool, from Debian's packages (rules: deploy/prometheus/)
	@command -v promtool >/dev/null 2>&1 || $(call apt_install,prometheus)

web-checks: tools/web-checks/node_modules/.package-lock.json  ## Redocly's OpenAPI linter and axe-core, pinned in tools/web-checks/package-lock.json

tools/web-checks/node_modules/.package-lock.json: tools/web-checks/package-lock.json
	@command -v npm >/dev/null 2>&1 || $(call apt_install,npm)
	npm ci --prefix tools/web-checks --no-audit --no-fund --loglevel=error

kubernetes-checks: tools/checkov/.venv/bin/checkov  ## checkov (pinned with hashes in tools/checkov/requirements.txt) and kubectl's kustomize, for the manifests' tests
	@command -v kubectl >/dev/null 2>&1 || { echo "kubectl is needed to build deploy/kubernetes/overlays (its kustomize): https://kubernetes.io/docs/tasks/tools/" >&2; exit 1; }

# checkov pins versions that the workspace's own tools outgrew (packaging < 24): a venv of its own.
tools/checkov/.venv/bin/checkov: tools/checkov/requirements.txt
	$(UV) venv -q --allow-existing tools/checkov/.venv --python 3.11
	$(UV) pip install -q --python tools/checkov/.venv/bin/python --require-hashes -r tools/checkov/requirements.txt
	@touch $@

browser:  ## Debian's Chromium, which the page tests drive with Playwright (it never downloads a browser)
	@command -v chromium >/dev/null 2>&1 || $(call apt_install,chromium)

test: install browser edge prometheus web-checks kubernetes-checks  ## lint, then the test suite (benchmarks excluded)
	$(UV) run --frozen --no-sync ruff check .
	$(UV) run --frozen --no-sync pytest $(PYTEST_ARGS)

test-quick: install browser edge prometheus web-checks kubernetes-checks  ## the tests without the fault tests (which kill services and stop RabbitMQ)
	$(UV) run --frozen --no-sync pytest -m "not bench and not fault" $(PYTEST_ARGS)

test-faults: install edge  ## the fault suite alone: faults injected under load, with what was lost (nothing)
	$(UV) run --frozen --no-sync pytest -m fault -p no:cacheprovider -s $(PYTEST_ARGS)

bench: install edge  ## benchmarks, out of the default test run: figures and charts into docs/benchmarks.md, docs/charts/ and docs/benchmark-results.json
	@command -v wrk >/dev/null 2>&1 || $(call apt_install,wrk)  # the availability figures' cross-check
	$(UV) run --frozen --no-sync pytest -m bench -p no:cacheprovider -s $(PYTEST_ARGS)

soak: install edge  ## the capacity state machine for longer (SOAK_EXAMPLES histories of 30 steps; default 2,000)
	STATE_MACHINE_EXAMPLES=$${SOAK_EXAMPLES:-2000} $(UV) run --frozen --no-sync pytest -p no:cacheprovider \
		tests/integration/test_capacity_state_machine.py $(PYTEST_ARGS)
