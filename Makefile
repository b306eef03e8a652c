PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1

# make run starts from any Python 3.11: it installs into the venv itself, with a one-line progress display
LAUNCH_PY = $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PY))

.PHONY: install run test lint stop clean bench bench-cache chromium

$(BIN)/.installed: requirements/base.txt requirements/dev.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements/dev.txt
	touch $@

install: $(BIN)/.installed

run:
	@$(LAUNCH_PY) aiproxy_site/launcher.py --install

# the browser tests need Debian's chromium: installed here when run as root, else the command to run
chromium:
	@$(LAUNCH_PY) tests/chromium.py

test: install chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

bench-cache: install
	$(BIN)/python benchmarks/semantic_cache.py $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy .

# every process make run started (tracked under .aiproxy/run/), the embedded servers, and the tests' ones;
# with AIPROXY_DATA_DIR set, only that data directory's
stop:
	@$(LAUNCH_PY) aiproxy_site/launcher.py stop
	@$(if $(AIPROXY_DATA_DIR),,AIPROXY_DATA_DIR=.aiproxy/test $(LAUNCH_PY) aiproxy_site/launcher.py stop)

clean: stop
	rm -rf .aiproxy
