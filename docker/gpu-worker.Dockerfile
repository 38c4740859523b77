# syntax=docker/dockerfile:1
# The GPU worker: CUDA + vLLM + the whole project (extras gpu and celery), serving the Celery queue `gpu`
# (the checkpoint.evaluate task: serve, accuracy, latency). Build from the repository root:
#   docker build -f docker/gpu-worker.Dockerfile -t checkpoint-evals-gpu-worker .
#
# Versions: constraints.txt (the lock) overlaid by docker/gpu-constraints.txt (vLLM and what it adds; its header
# says why vllm==0.30.0 and numpy==2.3.5). torch==2.13.0 from PyPI is the CUDA build and brings its own CUDA
# libraries; the host needs an NVIDIA driver recent enough for them and the NVIDIA Container Toolkit.
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-runtime-ubuntu24.04
FROM ${CUDA_IMAGE}

ARG DEBIAN_FRONTEND=noninteractive
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/airflow/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False

# Python 3.11, the version the lock was resolved on (Ubuntu 24.04 ships 3.12). Headers and a C compiler: Triton
# and FlashInfer compile kernels at run time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends software-properties-common gpg-agent \
    && add-apt-repository -y ppa:deadsnakes/ppa \
    && apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv python3.11-dev build-essential tini \
    && rm -rf /var/lib/apt/lists/* \
    && python3.11 -m venv /opt/venv \
    && useradd --uid 50000 --gid 0 --home-dir /opt/airflow --create-home airflow \
    && mkdir -p /opt/airflow/logs /var/lib/evals/cache \
    && chown -R airflow:0 /opt/airflow /var/lib/evals

WORKDIR /opt/checkpoint-evals
COPY constraints.txt docker/gpu-constraints.txt ./lock/
# The overlay wins: a package pinned in gpu-constraints.txt drops the lock's pin of that package.
RUN awk -F'==' 'NR == FNR { if ($1 !~ /^#/) over[tolower($1)] = 1; print; next } !(tolower($1) in over)' \
        lock/gpu-constraints.txt lock/constraints.txt > lock/gpu-lock.txt \
    && pip install -c lock/gpu-lock.txt torch==2.13.0

COPY pyproject.toml README.md ./
COPY evals ./evals
RUN pip install -c lock/gpu-lock.txt '.[gpu,celery]' \
    && pip check \
    && python -c "import vllm, evals.pipeline.steps"

COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins

USER airflow
WORKDIR /opt/airflow
ENTRYPOINT ["/usr/bin/tini", "--", "airflow"]
CMD ["celery", "worker", "--queues", "gpu", "--concurrency", "1"]
