# Greenlight: `make demo` and `make test` work on a fresh machine (Python 3.11, PostgreSQL for tests).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
TORCH := torch==2.13.0
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/greenlight
DEMO_ADDRESS ?= 127.0.0.1:8000

.PHONY: demo serve up test lint typecheck check-imports install postgres chromium screenshots lock clean

install: $(STAMP)

# torch first and pinned: a requirement that lets pip choose would pull a CUDA build.
$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "==> installing $(TORCH) (CPU)"
	@set -o pipefail; $(PY) -m pip install -q --disable-pip-version-check $(TORCH) 2>&1 | { grep -v "is ignored" || true; }
	@echo "==> installing pinned dependencies (requirements.lock)"
	@set -o pipefail; $(PY) -m pip install -q --disable-pip-version-check -c requirements.lock -e '.[dev]' 2>&1 \
	  | { grep -v "is ignored" || true; }
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py sweep
	$(PY) manage.py demo --address http://$(DEMO_ADDRESS)
	@echo "Serving the review dashboard at http://$(DEMO_ADDRESS)/ -- login: reviewer / $${GREENLIGHT_DEMO_PASSWORD:-greenlight-demo}, requests: marketing / $${GREENLIGHT_DEMO_PASSWORD:-greenlight-demo} (Ctrl-C to stop)"
	$(PY) manage.py runserver $(DEMO_ADDRESS) --noreload

# The dashboard in production: migrate, collect the static files, then gunicorn (infra/gunicorn.conf.py)
# with the production profile. Needs GREENLIGHT_SECRET_KEY, GREENLIGHT_ALLOWED_HOSTS, DATABASE_URL and
# the signing files (docs/security.md); GREENLIGHT_WEB_BIND, _WORKERS and _THREADS size it (docs/deploy.md).
serve: export GREENLIGHT_ENV = production
serve: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v 0
	$(PY) manage.py sweep
	exec $(VENV)/bin/gunicorn -c infra/gunicorn.conf.py

# The production topology on this machine (infra/up.py): a Prefect server on its own PostgreSQL
# database, the coordinator service, GREENLIGHT_WORKERS generation workers (default 2) and the web
# app under gunicorn with WhiteNoise; prints where each one is. docs/deploy.md maps it to many machines.
up: $(STAMP) postgres
	$(PY) manage.py signing_keys_create
	exec $(PY) -m infra.up --workers $${GREENLIGHT_WORKERS:-2}

# PostgreSQL must answer on 127.0.0.1:5432; start the local cluster if it is down.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { \
	  echo "==> starting PostgreSQL"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start; \
	  for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; \
	  pg_isready -h 127.0.0.1 -p 5432; }
	@psql "$(TEST_DATABASE_URL)" -qc 'select 1' >/dev/null 2>&1 || { \
	  echo "==> creating database $(notdir $(TEST_DATABASE_URL))"; \
	  createdb -h 127.0.0.1 -p 5432 -U postgres $(notdir $(TEST_DATABASE_URL)); }

# Browser tests drive Debian's chromium; it is installed from Debian's packages, never downloaded.
# In CI (the CI variable set) a browser that cannot be installed fails here, and the tests would fail too.
chromium: $(STAMP)
	@command -v chromium >/dev/null || { echo "==> installing Debian's chromium"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || { if [ -n "$$CI" ]; then echo "chromium could not be installed: CI runs the browser tests" >&2; exit 1; fi; \
	       echo "chromium could not be installed: browser tests will be skipped"; }; }
	@$(PY) -c "import playwright.sync_api" 2>/dev/null || { \
	  if [ -n "$$CI" ]; then echo "playwright is not installed: CI runs the browser tests" >&2; exit 1; fi; \
	  echo "playwright is not installed: browser tests will be skipped"; }

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy

# The import contracts in pyproject.toml ([tool.importlinter]): rooms import downwards only.
check-imports: $(STAMP)
	$(VENV)/bin/lint-imports

test: $(STAMP) postgres chromium lint typecheck check-imports
	@rm -rf var/test && mkdir -p var/test
	DATABASE_URL=$(TEST_DATABASE_URL) PREFECT_HOME=$(CURDIR)/var/test/prefect \
	  GREENLIGHT_VAR_DIR=$(CURDIR)/var/test $(PY) -m pytest

# Re-take the README's screenshots (docs/screenshots/) with the browser tests.
screenshots: $(STAMP) postgres chromium
	DATABASE_URL=$(TEST_DATABASE_URL) PREFECT_HOME=$(CURDIR)/var/test/prefect GREENLIGHT_VAR_DIR=$(CURDIR)/var/test \
	  GREENLIGHT_SCREENSHOTS=$(CURDIR)/docs/screenshots $(PY) -m pytest -m browser

# Re-pin requirements.lock from the current environment (after changing pyproject.toml).
lock: $(STAMP)
	@{ echo "# Pinned versions of every dependency (pip freeze of a working environment)."; \
	  echo "# torch==2.13.0 (CPU) is installed first by the Makefile; regenerate with: make lock"; \
	  $(PY) -m pip freeze --exclude-editable | grep -viE '^(torch|greenlight)[= ]'; } > requirements.lock

clean:
	rm -rf var/test .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
