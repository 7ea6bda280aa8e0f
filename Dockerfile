# One image for every role (api, scheduler, worker, dashboard); docker-compose.yml picks the
# role with the command. torch comes first and pinned (as in the Makefile) so the layer with the
# big wheels is cached across code changes; the PyPI Linux wheels carry CUDA for the workers.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BOUNDSWEEP_DATA_DIR=/data

# gcc builds the fused AdaBound kernel once per machine (optimizers/_fused.py); without it
# workers fall back to the per-tensor loop, 3-4x slower per step.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

RUN pip install torch==2.14.1 torchvision==0.29.1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY optimizers ./optimizers
COPY studies ./studies
COPY workers ./workers
COPY service ./service
RUN pip install . \
    && useradd --create-home --uid 1000 boundsweep \
    && mkdir -p /data \
    && chown boundsweep /data

USER boundsweep
EXPOSE 8000 8080
ENTRYPOINT ["boundsweep"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
