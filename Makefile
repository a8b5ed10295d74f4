# Two commands a newcomer needs: `make demo` and `make test`. Both set up what they need first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SPEED ?= 600
DAY ?= data/elections/kz-2022-11-20-presidential.jsonl

.PHONY: demo replay test test-fast venv system-deps lint bench clean

$(BIN)/turnout-watch: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@# grafana-client -> niquests -> urllib3-future, whose wheel copies itself over urllib3 at every Python
	@# start (a .pth hook) and breaks requests (schemathesis). Keep the two apart, as urllib3-future documents
	@# (URLLIB3_NO_OVERRIDE): niquests then imports urllib3_future, everything else the real urllib3.
	rm -f $(VENV)/lib/python3*/site-packages/urllib3_future.pth
	$(BIN)/python -m pip install -q --force-reinstall --no-deps "urllib3==$$($(BIN)/python -m pip show urllib3 | sed -n 's/^Version: //p')"
	@touch $@

venv: $(BIN)/turnout-watch

# Debian packages the tests use for real: prometheus (promtool, the server), prometheus-alertmanager (amtool
# tests the alert routing) and chromium (the observer form; Playwright's own browser download does not work
# here). One `apt-get update`, then only what is missing.
SYSTEM_PACKAGES := prometheus:promtool prometheus-alertmanager:amtool chromium:chromium
system-deps:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do \
	  command -v $${pair##*:} >/dev/null 2>&1 || missing="$$missing $${pair%%:*}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    --no-install-recommends $$missing >/dev/null; fi

## A drill of the whole watch room (`turnout-watch up --drill`): CEC simulator, scraper, simulated observers,
## intake, workers, and Prometheus + Alertmanager when installed (`make system-deps`), on 20 Nov 2022 at
## SPEED x; prints the URLs, then flags and notifications as they fire, and stops when the day is over.
demo: venv
	rm -rf run/demo
	$(BIN)/turnout-watch up --drill $(DAY) --speed $(SPEED) --until-done --data-dir run/demo

## Replay the same day through broker and workers only, no inputs (SPEED=max for fastest).
replay: venv
	$(BIN)/turnout-watch replay $(DAY) --speed $(SPEED)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## The fast loop: everything that needs no broker (about 30 s; some tests still run promtool/amtool).
test-fast: system-deps venv
	$(BIN)/pytest -m "not integration"

## Lint, type-check, check the layers and run the whole test suite (real tansu broker, real promtool).
test: system-deps venv lint
	$(BIN)/pytest

bench: venv
	$(BIN)/python bench/agent_throughput.py --releases 20000 --elections 200
	$(BIN)/python bench/observer_throughput.py --counts 100000 --stations 10000
	$(BIN)/python bench/observer_intake.py --stations 10000 --concurrency 64

clean:
	rm -rf $(VENV) run .pytest_cache .mypy_cache .ruff_cache *.egg-info
