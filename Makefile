# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test install lint

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# Compiled translations (.mo, not committed) follow their .po sources.
locale/%/LC_MESSAGES/django.mo: locale/%/LC_MESSAGES/django.po $(VENV)/.installed
	$(PY) manage.py compile_locales -v 0

install: $(VENV)/.installed locale/fr/LC_MESSAGES/django.mo

## Set up everything (virtualenv, database, synthetic history, model, demo accounts) and serve on 127.0.0.1:8000.
demo: install
	./scripts/demo.sh

## Run the whole test suite (DATABASE_URL / CELERY_BROKER_URL select PostgreSQL and Redis).
test: install
	./scripts/test.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py feature_catalogue --check
