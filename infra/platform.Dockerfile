# The image of the platform's own processes under docker compose (infra/compose.yaml): the function gateway, the
# Kafka triggers, the simulator, migrations and scheduled backups. pg_dump comes with postgresql-client (backups).
# Build from the repository root:  docker build -f infra/platform.Dockerfile -t smartcity/platform:0.1.0 .
FROM python:3.11-slim-bookworm

RUN apt-get update && apt-get install --yes --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system app && useradd --system --gid app --create-home --home-dir /home/app app
WORKDIR /opt/smartcity
COPY pyproject.toml README.md stack.yml ./
COPY smartcity ./smartcity
COPY functions ./functions
COPY streaming ./streaming
COPY grafana ./grafana
COPY models ./models
RUN pip install --no-cache-dir ".[api,archive,simulator,models,connectors]"

USER app
ENTRYPOINT ["smartcity"]
