# Entry points: make run | make test | make lint | make bench
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= config/example.yaml

.PHONY: install run demo test lint bench system-deps mlflow-server

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,example,cluster]'
	touch $@

install: $(VENV)/.installed

# Prometheus, promtool, Alertmanager, amtool, Chromium and nats-server from Debian: the tests run the
# real programs (tests/cluster/ starts a 3-node NATS JetStream cluster).
system-deps:
	@command -v promtool >/dev/null && command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null \
	  && command -v chromium >/dev/null && command -v nats-server >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    --no-install-recommends prometheus prometheus-alertmanager chromium nats-server >/dev/null; }

# The MLflow server the exporter tests start: full `mlflow` in a venv of its own (it pins versions
# the monitor's venv must not take). Point MLFLOW_BIN elsewhere to use another install.
mlflow-server: .venv-mlflow/bin/mlflow

.venv-mlflow/bin/mlflow:
	python3 -m venv .venv-mlflow
	.venv-mlflow/bin/pip install -q 'mlflow>=3,<4'

run: install
	$(VENV)/bin/drift-monitor serve --config $(CONFIG)

# Monitor + example model service + a drift scenario on 127.0.0.1 with a live summary, no Docker;
# Ctrl-C stops everything. Options: make demo ARGS="--scenario gradual_drift --rate 100" (see --help).
demo: install
	$(PY) scripts/demo.py $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy monitor_service

# Two workers, each taking whole test files (module fixtures such as a Prometheus or a NATS cluster
# stay with their tests; free_port gives each worker its own port range).
test: install system-deps mlflow-server lint
	$(PY) -m pytest -n 2 --dist loadfile

bench: install
	$(PY) bench/calculation.py
	$(PY) bench/ingest.py
	$(PY) bench/memory.py
	$(PY) bench/durability.py
	$(PY) bench/values.py
