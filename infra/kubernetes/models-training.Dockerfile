# The image of the scheduled training (models-training-cronjob.yaml): the project with its models and torch
# extras, torch from its CPU-only index (the CUDA wheels would add gigabytes that a CPU node never uses).
# Build from the repository root:  docker build -f infra/kubernetes/models-training.Dockerfile -t smartcity/models-training:0.1.0 .
FROM python:3.11-slim-bookworm

RUN groupadd --system app && useradd --system --gid app --create-home --home-dir /home/app app
WORKDIR /opt/smartcity
COPY pyproject.toml README.md ./
COPY smartcity ./smartcity
COPY streaming ./streaming
COPY grafana ./grafana
COPY models ./models
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu ".[models,torch]"

USER app
ENTRYPOINT ["smartcity"]
CMD ["models", "train"]
