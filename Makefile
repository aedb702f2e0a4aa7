PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
ONLY ?=

.PHONY: run test bench messages install install-dev lint format migrate seed stop-redis clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: requirements.txt $(BIN)/python
	bash scripts/ensure-system-deps.sh
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements.txt $(VENV)/.installed
	WITH_BROWSER=1 bash scripts/ensure-system-deps.sh
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

# Translations: locale/<lang>/LC_MESSAGES/django.po (edited by people) compiled to .mo.
MO := locale/zh_Hans/LC_MESSAGES/django.mo
$(MO): locale/zh_Hans/LC_MESSAGES/django.po $(VENV)/.installed
	$(BIN)/python manage.py compilemessages --ignore .venv --ignore var --ignore node_modules -v 0

## make messages: collect new strings into the .po files (then translate them), compile them
messages: $(VENV)/.installed
	$(BIN)/python manage.py makemessages -l zh_Hans --ignore .venv --ignore var --ignore bench --ignore tests --no-obsolete
	$(MAKE) $(MO)

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install $(MO)
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py seed_demo

## make run: install, migrate, seed, then web + worker + beat in the foreground (Ctrl-C stops all)
run: seed
	@PORT=$(PORT) bash scripts/run.sh

## make test: install what is missing, lint (ruff, mypy), run the whole suite
test: install-dev $(MO)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make bench [ONLY=name]: benchmarks under bench/, figures merged into var/bench/results.json
bench: install-dev
	$(BIN)/python -m bench $(ONLY)

## make lint: ruff and mypy (django-stubs, djangorestframework-stubs; [tool.mypy] in pyproject.toml,
## incremental cache under var/mypy, so a second run takes seconds)
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

stop-redis:
	$(BIN)/python -c "from pathlib import Path; from core.embedded_redis import stop; print('stopped' if stop(Path('var')) else 'not running')"

clean:
	rm -rf var/bench var/test.sqlite3*
