# Hookway — the same targets run on a laptop and in CI.
SHELL := /bin/bash
.DEFAULT_GOAL := help

HOST ?= 127.0.0.1
PORT ?= 8000
# uv from PATH, else the copy `make install` puts in the user's site-packages.
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN := $(UV) run --frozen
# PostgreSQL the test suite uses when it is reachable (pytest-django creates test_hookway).
PG_TEST_URL ?= postgres://postgres@127.0.0.1:5432/hookway

export UV_PYTHON_DOWNLOADS := never

# Each test run spreads over one pytest-xdist worker per core (WORKERS= for one process):
# the servers and commands its tests start keep the cores busy, and a worker takes the
# next test when it is free (worksteal), so one slow file doesn't hold the run's end.
WORKERS ?= -n auto --dist worksteal

.PHONY: help install run test lint typecheck test-sqlite test-postgres bench bench-install bench-smoke drill superuser api-key browser screenshots

help:
	@echo "make run    set everything up and serve Hookway on http://$(HOST):$(PORT)"
	@echo "make test   set everything up and run lint, types and the tests (SQLite + PostgreSQL)"
	@echo "make bench  run the benchmarks (bench/README.md); make bench-smoke for a quick check"
	@echo "make screenshots  the console's pages, seeded, into docs/console/ (docs/console.md)"
	@echo "make drill  fault drill: load while killing processes and breaking the database (docs/operations.md)"

# Bytecode compiled once here, not by every process at start (uv installs without it, and
# with PYTHONDONTWRITEBYTECODE set Python never caches its own): a server starts on about
# half the CPU, which the test suite, starting hundreds of them, feels most.
install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
		{ echo "installing uv with pip"; python3 -m pip install --user --quiet uv; }
	@$(UV) sync --frozen --inexact --quiet --compile-bytecode
	@$(UV) run --frozen --no-sync python -m compileall -q -j 0 hookway >/dev/null

# The demo (and its admin login) may use Hookway's development SECRET_KEY when none is set;
# anything else refuses to start without one (docs/configuration.md).
run superuser api-key: export HOOKWAY_DEMO ?= true
# The demo config unless HOOKWAY_CONFIG names the operator's own file.
run: export HOOKWAY_CONFIG := $(or $(HOOKWAY_CONFIG),var/demo.toml)
run: export HOOKWAY_ALLOW_PRIVATE_DESTINATIONS ?= true
run: install
	@mkdir -p var
	@sed -e "s#http://127.0.0.1:8000/#http://$(HOST):$(PORT)/#" config/demo.toml > var/demo.toml
	@$(RUN) python manage.py migrate --no-input -v0
	@$(RUN) python manage.py collectstatic --no-input -v0
	@HOST=$(HOST) PORT=$(PORT) $(RUN) python manage.py banner
	@exec $(RUN) uvicorn hookway.asgi:application --host $(HOST) --port $(PORT) \
		--lifespan on --no-access-log --timeout-graceful-shutdown 15

# Interactive; or, with DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD (and
# optionally DJANGO_SUPERUSER_EMAIL) set, without a terminal (scripts, CI, containers).
superuser: install
	@$(RUN) python manage.py migrate --no-input -v0
	@if [ -n "$$DJANGO_SUPERUSER_USERNAME" ] && [ -n "$$DJANGO_SUPERUSER_PASSWORD" ]; then \
		DJANGO_SUPERUSER_EMAIL=$${DJANGO_SUPERUSER_EMAIL:-$$DJANGO_SUPERUSER_USERNAME@localhost} \
		$(RUN) python manage.py createsuperuser --no-input \
		&& echo "superuser $$DJANGO_SUPERUSER_USERNAME created"; \
	else \
		$(RUN) python manage.py createsuperuser; \
	fi

# An operator API key for the server `make run` serves (docs/api.md): printed alone on the
# last line. NAME names what uses it; SCOPE is read (the default) or write.
api-key: install
	@$(RUN) python manage.py migrate --no-input -v0
	@$(RUN) python manage.py create_api_key "$(or $(NAME),make-api-key)" --scope "$(or $(SCOPE),read)"

lint: install
	$(RUN) ruff format --check .
	$(RUN) ruff check .

# django-stubs imports the settings, which refuse to load without SECRET_KEY or demo mode.
typecheck: export HOOKWAY_DEMO ?= true
typecheck: install
	$(RUN) mypy hookway

# The console's browser tests drive Debian's chromium (tests/browser.py installs it too,
# as root; anyone else is told how, and those tests are skipped saying why).
browser:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && \
		{ apt-get install -y -qq chromium >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; } || \
		echo "chromium is missing: sudo apt-get install chromium (the console's browser tests skip without it)"; }

test-sqlite: install browser
	env -u DATABASE_URL $(RUN) pytest $(WORKERS) $(PYTEST_ARGS) || [ $$? -eq 5 ]  # 5: no tests selected

test-postgres: install browser
	@if $(RUN) python -c "import psycopg; psycopg.connect('$(PG_TEST_URL)'.rsplit('/', 1)[0] + '/postgres', connect_timeout=3).close()" 2>/dev/null; then \
		DATABASE_URL=$(PG_TEST_URL) $(RUN) pytest $(WORKERS) $(PYTEST_ARGS) || [ $$? -eq 5 ]; \
	elif [ -n "$$CI" ]; then \
		echo "PostgreSQL is not reachable at $(PG_TEST_URL): CI must test it"; exit 1; \
	else \
		echo "SKIPPED: PostgreSQL is not reachable at $(PG_TEST_URL); set PG_TEST_URL to test it"; \
	fi

# The two runs side by side, each printed whole when it ends.
test: lint typecheck
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-sqlite test-postgres

# The benchmarks need wrk (Debian) and the peers' packages (uv group "bench").
bench-install: install
	@command -v wrk >/dev/null 2>&1 || { echo "installing wrk"; \
		(apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }); }
	@$(UV) sync --frozen --inexact --group bench --quiet

# The benchmarks' Hookway processes are throwaway demos: the development SECRET_KEY is fine.
bench bench-smoke: export HOOKWAY_DEMO ?= true
bench: bench-install
	$(RUN) --group bench python -m bench $(BENCH_ARGS)

bench-smoke: bench-install
	$(RUN) --group bench python -m bench --quick

# The console's pages with seeded data, at laptop and phone widths, into docs/console/
# (docs/console.md shows them): a throwaway database and server, Debian's chromium.
screenshots: export HOOKWAY_DEMO ?= true
screenshots: install browser
	$(RUN) python docs/tools/screenshots.py

# Needs PostgreSQL on 127.0.0.1:5432 (DRILL_ARGS="--db sqlite" to run it on SQLite).
drill: install
	$(RUN) python -m drill $(DRILL_ARGS)
