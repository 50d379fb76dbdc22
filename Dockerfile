# retrainflow image: one image for every Airflow component and the MLflow server.
# Dependencies come from the same lock file as the local install (no constraint files).
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PYTHON_DOWNLOADS=never \
    AIRFLOW_HOME=/opt/airflow \
    RETRAINFLOW_HOME=/opt/retrainflow \
    RETRAINFLOW_CONFIG_DIR=/opt/retrainflow-src/config/pipelines \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/retrainflow-src/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/retrainflow-src/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=1 \
    OMP_WAIT_POLICY=PASSIVE

RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 curl \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir "uv==0.13.9"

WORKDIR /opt/retrainflow-src
COPY requirements.lock pyproject.toml README.md ./
RUN uv pip install --system --no-cache --compile-bytecode -r requirements.lock
COPY src ./src
COPY dags ./dags
COPY plugins ./plugins
COPY config ./config
RUN uv pip install --system --no-cache --compile-bytecode --no-deps . \
    && useradd --create-home --uid 50000 airflow \
    && mkdir -p "$AIRFLOW_HOME" "$RETRAINFLOW_HOME" \
    && chown -R airflow "$AIRFLOW_HOME" "$RETRAINFLOW_HOME"

USER airflow
CMD ["retrainflow", "--help"]
