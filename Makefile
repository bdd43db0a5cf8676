# The two commands: `make run` and `make test`. Everything else is set-up they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test demo install install-dev lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	@echo "[autoseq] installing the Python requirements into $(VENV) (first run: a minute or two)"
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	@echo "[autoseq] installing the test requirements into $(VENV)"
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# axe-core for the browser journeys' accessibility audit (tests/e2e/axe.py), pinned by package-lock.json.
node_modules/.installed: package.json package-lock.json
	@echo "[autoseq] installing the journeys' Node tools (npm ci: axe-core)"
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev node_modules/.installed

## Run AutoSeq (web, worker, scheduler; plus the HubSpot sandbox unless a real app is configured).
run: install
	$(BIN)/python scripts/dev.py run

## 90 days of made-up enrollments in a separate demo workspace (for the first workspace's members).
demo: install
	$(BIN)/python scripts/dev.py demo $(DEMO_ARGS)

## Run the whole test suite (SQLite by default; set DATABASE_URL for PostgreSQL).
test: install-dev
	$(BIN)/python scripts/dev.py test $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check autoseq tests

bench: install-dev
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
