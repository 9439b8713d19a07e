# Two commands on a fresh machine with Python 3.11+ and make:
#   make run    install what is needed, start Baton on its embedded defaults
#   make test   install what is needed, run the whole test suite (SQLite and PostgreSQL)
# Every install takes its versions from constraints.txt, the lock: what CI tested is what a newcomer gets.
# `make lock` rewrites it from pyproject.toml; a changed lock reinstalls at the next make run/test/lint.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := constraints.txt
PIP_VERSION := 26.3
INSTALL := $(BIN)/python -m pip install --quiet -c $(LOCK)
# uv resolves the lock. It lives in a venv of its own, so it is not among the packages it pins.
UV_VERSION := 0.13.8
UV     := $(VENV)/tools/bin/uv
# PostgreSQL for the second half of the suite; unreachable means skipped locally, failed in CI.
BATON_TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test
export BATON_TEST_DATABASE_URL

.PHONY: run test bench lint format lock clean

run: $(VENV)/.installed
	$(BIN)/baton serve

# Two workers (pytest-xdist), each with its own SQLite file and PostgreSQL database; TEST_WORKERS=0 runs serially.
# Two, not one per core: each worker starts servers, replicas and a browser that hold database connections.
TEST_WORKERS ?= 2
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# Format check, lint, types and the layer contracts: what CI runs before the tests.
lint: $(VENV)/.installed-lint
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(VENV)/.installed-lint
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.installed-test
	$(BIN)/python -m bench

# Re-resolve the lock for Python 3.11 on Linux from pyproject.toml's dependencies and its test and lint extras.
# Pins that still fit are kept, so run it after changing a dependency in pyproject.toml and only that moves.
# `make lock LOCK_ARGS=--upgrade` takes the newest release of everything; LOCK_ARGS='-P aiohttp' just one package.
lock: $(UV)
	$(UV) pip compile pyproject.toml --extra test --extra lint \
		--python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
		--custom-compile-command 'make lock' --quiet $(LOCK_ARGS) -o $(LOCK)

$(UV):
	$(PYTHON) -m venv $(VENV)/tools
	$(VENV)/tools/bin/python -m pip install --quiet 'uv==$(UV_VERSION)'

$(VENV)/.created:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Baton needs Python 3.11 or newer: run make with PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'pip==$(PIP_VERSION)'
	@touch $@

$(VENV)/.installed: pyproject.toml $(LOCK) $(VENV)/.created
	$(INSTALL) -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml $(LOCK) $(VENV)/.created
	$(INSTALL) -e '.[test]'
	@touch $@ $(VENV)/.installed

$(VENV)/.installed-lint: pyproject.toml $(LOCK) $(VENV)/.created
	$(INSTALL) -e '.[test,lint]'
	@touch $@ $(VENV)/.installed $(VENV)/.installed-test

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
