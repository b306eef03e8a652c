PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1

.PHONY: install run test lint stop clean bench bench-cache

$(BIN)/.installed: requirements/base.txt requirements/dev.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements/dev.txt
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/python -m aiproxy_site.launcher

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

bench-cache: install
	$(BIN)/python benchmarks/semantic_cache.py $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy .

stop: install
	$(BIN)/python -c "from aiproxy_site.embedded import stop_all; stop_all()"
	AIPROXY_DATA_DIR=.aiproxy/test $(BIN)/python -c "from aiproxy_site.embedded import stop_all; stop_all()"

clean: stop
	rm -rf .aiproxy
