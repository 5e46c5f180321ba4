# retake: the two commands a new machine needs are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXT_STAMP := $(VENV)/.extensions

.PHONY: install extensions run demo web test check system-deps services node-deps format clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,test]'
	touch $(STAMP) $(EXT_STAMP)

## install: create .venv with the server, dev and test dependencies, and build the web bundle
install: $(STAMP) web
	@$(MAKE) --no-print-directory extensions  # a second make: it sees the stamp the install just wrote

## extensions: rebuild the Cython hot path in place after an edit (`pip install -e` built it; without a C
## compiler it stays pure Python; the modules are listed in src/retake/extensions.py)
$(EXT_STAMP): $(STAMP) setup.py $(wildcard src/retake/*.py src/retake/*/*.py src/retake/*/*/*.py src/retake/*/*.pxd src/retake/*/*/*.pxd)
	$(BIN)/python setup.py --quiet build_ext --inplace
	touch $(EXT_STAMP)

extensions: $(EXT_STAMP)

## run: install if needed, then start the platform on embedded defaults (SQLite, in-process pub/sub)
run: install
	$(BIN)/retake serve

## demo: like run, plus a demo agent that streams a test picture with a clock and chats
demo: install
	$(BIN)/retake serve --demo

## system-deps: Debian packages the tests drive (ffmpeg, Xvfb, Chromium)
system-deps:
	bash scripts/install-system-deps.sh

## services: start PostgreSQL and Redis when they are not already running
services:
	bash scripts/start-services.sh

## node-deps: the npm packages of package-lock.json (socket.io-client for tests/realtime/js, the web bundle)
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

node-deps: system-deps $(NODE_STAMP)

## web: bundle web/src (mpegts.js, hls.js, socket.io-client from npm) into src/retake/server/web/static/dist
web: node-deps
	npm run --silent build

## test: install everything the tests need, start services, run the whole suite (two pytest-xdist workers: most
## tests wait on real time — streams, grace periods, an outage — so two overlap well on two cores); then the
## suites of the media path once more as pure Python (RETAKE_NO_EXTENSIONS=1), the fallback of the compiled modules
test: install system-deps services node-deps
	$(BIN)/pytest -q -n 2 --dist loadgroup
	RETAKE_NO_EXTENSIONS=1 $(BIN)/pytest -q -n 2 tests/ingest tests/media tests/av tests/unit/test_extensions.py

## check: lint, format check and strict typing
check: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	npm run --silent typecheck

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache build
	find src/retake \( -name '*.so' -o -name '*.c' \) -delete
