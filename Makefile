# retake: the two commands a new machine needs are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test check system-deps services format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,test]'
	touch $(STAMP)

## install: create .venv with the server, dev and test dependencies
install: $(STAMP)

## run: install if needed, then start the platform on embedded defaults (SQLite, in-process pub/sub)
run: install
	$(BIN)/retake serve

## system-deps: Debian packages the tests drive (ffmpeg, Xvfb, Chromium)
system-deps:
	bash scripts/install-system-deps.sh

## services: start PostgreSQL and Redis when they are not already running
services:
	bash scripts/start-services.sh

## test: install everything the tests need, start services, run the whole suite
test: install system-deps services
	$(BIN)/pytest -q

## check: lint, format check and strict typing
check: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
