# Two commands a newcomer needs: `make demo` and `make test`. Both set up what they need first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SPEED ?= 600
DAY ?= data/elections/kz-2022-11-20-presidential.jsonl

.PHONY: demo test venv system-deps lint bench clean

$(BIN)/turnout-watch: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@

venv: $(BIN)/turnout-watch

# promtool (Debian's prometheus package) checks our metrics in the tests; Debian's chromium runs the form tests
# (Playwright's own browser download does not work here).
system-deps:
	@command -v promtool >/dev/null 2>&1 || { \
	  echo "installing Debian's prometheus package (for promtool)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
	@test -x /usr/bin/chromium || { \
	  echo "installing Debian's chromium package (the observer form is tested in headless Chromium)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

## Replay the 20 Nov 2022 presidential election day through the whole pipeline (SPEED=max for fastest).
demo: venv
	$(BIN)/turnout-watch replay $(DAY) --speed $(SPEED)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Lint, type-check and run the whole test suite (real tansu broker, real promtool).
test: system-deps venv lint
	$(BIN)/pytest

bench: venv
	$(BIN)/python bench/agent_throughput.py --releases 20000 --elections 200
	$(BIN)/python bench/observer_intake.py --stations 10000 --concurrency 64

clean:
	rm -rf $(VENV) run .pytest_cache .mypy_cache .ruff_cache *.egg-info
