# Two images from one file: `service` (API, scheduler, dashboard: no GPU, no CUDA) and `worker`
# (CUDA torch from PyPI's Linux wheels, Triton with it, gcc for the CPU kernel). The worker is
# the last stage, so a plain `docker build .` makes it; docker-compose.yml names the target.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BOUNDSWEEP_DATA_DIR=/data

RUN useradd --create-home --uid 1000 boundsweep \
    && mkdir -p /data \
    && chown boundsweep /data
WORKDIR /app


# torch is the base package's one dependency (the optimizers), though the service never
# imports it: the slim image takes the CPU-only wheel, ~0.2 GB instead of the CUDA build's
# several, so pip finds torch satisfied and fetches no CUDA libraries.
FROM base AS service
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1
COPY pyproject.toml setup.py README.md LICENSE ./
COPY optimizers ./optimizers
COPY studies ./studies
COPY workers ./workers
COPY service ./service
RUN pip install '.[service]'
USER boundsweep
EXPOSE 8000 8080
ENTRYPOINT ["boundsweep"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]


FROM base AS worker
# gcc builds the fused CPU kernel (optimizers/_fused.py) used by CPU trials; CUDA trials use
# the Triton kernel, which Triton compiles on the first step into ~/.triton.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
# First and pinned (as in the Makefile): the layer with the big wheels is cached across code
# changes.
RUN pip install torch==2.14.1 torchvision==0.29.1
COPY pyproject.toml setup.py README.md LICENSE ./
COPY optimizers ./optimizers
COPY studies ./studies
COPY workers ./workers
COPY service ./service
RUN pip install '.[service]'
USER boundsweep
ENTRYPOINT ["boundsweep"]
# One process per GPU the container was given (docker-compose.yml gives it all of them).
CMD ["worker", "--gpus", "all"]
