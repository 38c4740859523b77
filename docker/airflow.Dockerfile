# syntax=docker/dockerfile:1
# The Airflow image of checkpoint-evals WITHOUT torch/vLLM: API server, scheduler, DAG processor, triggerer and
# the CPU Celery worker (default queue). Build from the repository root:
#   docker build -f docker/airflow.Dockerfile -t checkpoint-evals-airflow .
#
# How the eval stack is left out: the project's core dependencies include torch (through lm-eval[hf], accelerate),
# so `pip install .` cannot skip it and no constraint can remove a mandatory dependency. Instead the control plane
# installs an explicit list, docker/control-plane-requirements.txt (lines copied from pyproject.toml, checked by
# tests/unit/docker), with the lock as constraints, then the project itself with --no-deps. `pip check` would
# report the deliberately missing torch/lm-eval/transformers/accelerate/gguf, so the build asserts instead that
# torch is absent and that the DAGs and the pipeline's control-plane steps import.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/airflow/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False

RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 50000 --gid 0 --home-dir /opt/airflow --create-home airflow \
    && mkdir -p /opt/airflow/logs /opt/airflow/auth /var/lib/evals/cache \
    && chown -R airflow:0 /opt/airflow /var/lib/evals

WORKDIR /opt/checkpoint-evals
COPY constraints.txt docker/control-plane-requirements.txt ./lock/
RUN pip install -c lock/constraints.txt -r lock/control-plane-requirements.txt \
    && if pip show torch >/dev/null 2>&1; then echo "torch must not be in the control-plane image" >&2; exit 1; fi
# The analytics DAG's change points: Apache Otava's detection (numpy + scipy only) without its CLI's dependencies,
# which do not fit the lock (see the Makefile's venv recipe).
RUN pip install --no-deps apache-otava==0.8.0 \
    && python -c "from otava.analysis import compute_change_points"

COPY pyproject.toml README.md ./
COPY evals ./evals
RUN pip install --no-deps . \
    && python -c "import evals.pipeline.steps, evals.orchestration.group, evals.warehouse, evals.validation, evals.analysis"

COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins

USER airflow
WORKDIR /opt/airflow
ENTRYPOINT ["/usr/bin/tini", "--", "airflow"]
CMD ["version"]
