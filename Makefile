# make demo   — install into .venv, migrate SQLite, run the tutorial end to end
# make test   — install into .venv, run the whole suite on SQLite and on PostgreSQL
#               (first makes sure Chromium is there: scripts/ensure-chromium); where
#               rabbitmq-server is installed that includes tests/cluster/ (marker
#               cluster), which runs its own 3-node RabbitMQ on 127.0.0.1:5673-5675,
#               and tests/admin/test_unacked.py, which runs its own node with the
#               management plugin on 127.0.0.1:5677 (API on 15677)
# make test-unit — the pure-logic tests (marker unit) on in-memory SQLite; no broker needed
# make test-tasks-django6 — tests/tasks/ on Django 6.1 (django.tasks) in .venv-dj61, built
#               with a Python >= 3.12 the first time (scripts/test-tasks-django6)
# make dist  — the sdist and wheel in dist/ (python -m build), checked by twine check --strict
# make wheel-smoke — make dist, then scripts/wheel-smoke: the wheel's contents, and the wheel
#               installed in a fresh virtualenv into a new startproject site (needs RabbitMQ)
# make matrix — noxfile.py: Django 5.2 on Python 3.11/3.12, 6.0 and 6.1 on 3.12/3.13, each
#               the unit tier + a short real-broker smoke (pyenv's or PATH's Pythons; .nox/)
# make matrix-full — the whole suite on Django 6.1 / Python 3.12 on PostgreSQL (nox -s full)
# make docs  — the documentation site (docs/ → site/), mkdocs build --strict: a warning, a
#               broken link or anchor fails it; the reference's generated block checked
# make bench  — raw pika vs runconsumer/send side by side (sizes: make bench BENCH_N=20000)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: docs matrix matrix-full dist wheel-smoke install demo test test-unit test-sqlite test-postgres ensure-chromium lint format clean bench test-tasks-django6

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 11) else "messaging needs Python 3.11+ (this is %d.%d): make PYTHON=python3.12 ..." % v[:2])'
	@$(PYTHON) -m venv $(VENV) || { echo "make: could not create $(VENV) (on Debian/Ubuntu: apt install python3-venv)"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/python -m project.demo

test: test-sqlite test-postgres

# No RabbitMQ, no Chromium, no PostgreSQL: tests marked `unit` look for no broker.
test-unit: install
	MESSAGING_TEST_DB=sqlite DATABASE_URL=sqlite://:memory: $(BIN)/pytest -m unit

# The browser tests need Chromium: installed here when missing (root + apt-get), else
# the run stops before anything else with one line saying what to install.
ensure-chromium:
	@scripts/ensure-chromium

# Each database's suite in two parts: everything but the tests that stop the broker on
# TEST_WORKERS pytest-xdist workers (a file's tests stay together on one worker; see
# tests/conftest.py), then those tests (marker broker_control) alone.
TEST_WORKERS ?= 4
PARALLEL := -n $(TEST_WORKERS) --dist loadgroup -m "not broker_control" --durations=15

test-sqlite: ensure-chromium install
	MESSAGING_TEST_DB=sqlite $(BIN)/pytest $(PARALLEL)
	MESSAGING_TEST_DB=sqlite $(BIN)/pytest -m broker_control

test-postgres: ensure-chromium install
	MESSAGING_TEST_DB=postgres $(BIN)/pytest $(PARALLEL)
	MESSAGING_TEST_DB=postgres $(BIN)/pytest -m broker_control

# The task backend on Django 6.1 as well as 5.2 (+ the django-tasks backport).
test-tasks-django6:
	scripts/test-tasks-django6

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/check_structure.py
	$(BIN)/mypy
	$(BIN)/python manage.py makemigrations --check --dry-run

# Needs the RabbitMQ and PostgreSQL of `make test`; writes bench/results.md.
bench: install
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

docs: install
	@$(BIN)/python -c 'import mkdocs, material' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[docs]'
	$(BIN)/python scripts/docs_reference.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

matrix: install
	$(BIN)/nox

matrix-full: install
	$(BIN)/nox -s full

# Built from the sdist (python -m build's default), so the wheel holds what a user's would.
dist: install
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

wheel-smoke: dist
	scripts/wheel-smoke dist/*.whl

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) db.sqlite3 tests/.test-db*.sqlite3 .pytest_cache .ruff_cache
