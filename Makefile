# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test install install-dev lint

# What production runs (requirements.txt); the tests and tools come on top (requirements-dev.txt).
$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# Compiled translations (.mo, not committed) follow their .po sources.
locale/%/LC_MESSAGES/django.mo: locale/%/LC_MESSAGES/django.po $(VENV)/.installed
	$(PY) manage.py compile_locales -v 0

install: $(VENV)/.installed locale/fr/LC_MESSAGES/django.mo

install-dev: install $(VENV)/.installed-dev

## Set up everything (virtualenv, database, synthetic history, model, demo accounts) and serve on 127.0.0.1:8000.
demo: install
	./scripts/demo.sh

## Run the whole test suite (DATABASE_URL / CELERY_BROKER_URL select PostgreSQL and Redis).
test: install-dev
	./scripts/test.sh

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py feature_catalogue --check
