# One image for the whole example stack (docker-compose.yml):
#   default        the drift monitor on :8000 with config/stack.yaml
#   model service  python -m example_model_service --monitor-url http://monitor:8000 --host 0.0.0.0 --port 8080
#   traffic        python -m example_model_service.traffic --service http://model-service:8080 ...
# Build: docker build -t drift-monitor:local .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DRIFT_MONITOR_HOST=0.0.0.0 \
    HEALTHCHECK_URL=http://127.0.0.1:8000/healthz

WORKDIR /app

# Dependencies first (this layer is rebuilt only when the package metadata or the monitor changes).
# The `example` extra adds scikit-learn and joblib for the example model service, the `cluster`
# extra nats-py for cluster mode (docker compose --profile cluster).
COPY pyproject.toml README.md ./
COPY monitor_service ./monitor_service
RUN pip install ".[example,cluster]"

COPY config ./config
COPY datasets ./datasets
COPY example_model_service ./example_model_service
# Train the example models into the image (fixed seeds: the same models as the reference files in
# datasets/diamonds were made with), so the model service starts ready without writing anything.
RUN python -m example_model_service.train --no-references \
    && python -m compileall -q monitor_service example_model_service

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin app
USER app

EXPOSE 8000 8080

# Liveness of whichever server the container runs: set HEALTHCHECK_URL for another port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['HEALTHCHECK_URL'], timeout=2)"]

CMD ["python", "-m", "monitor_service", "serve", "--config", "config/stack.yaml"]
