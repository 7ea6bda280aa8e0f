"""docker-compose.yml and the Dockerfile: the compose tools accept them, with the shape we rely on.

`docker-compose config` (Debian's 1.29) and, where installed, `docker compose config` (v2) both
parse, validate and interpolate the real file; the tests then check the parsed result.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"


def _compose_commands() -> list[list[str]]:
    commands = []
    if shutil.which("docker-compose"):
        commands.append(["docker-compose"])
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        commands.append([docker, "compose"])
    return commands


COMPOSE_COMMANDS = _compose_commands()


def _config(compose: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("BOUNDSWEEP_", "POSTGRES_"))
    }
    environ.update(env)
    return subprocess.run(
        [*compose, "-f", str(COMPOSE_FILE), "config"],
        capture_output=True,
        text=True,
        env=environ,
        cwd=ROOT,
        timeout=60,
    )


@pytest.fixture(
    scope="module",
    params=COMPOSE_COMMANDS or [None],
    ids=lambda c: " ".join(c) if c else "none",
)
def compose(request: pytest.FixtureRequest) -> list[str]:
    if request.param is None:
        pytest.skip("neither docker-compose nor docker compose is installed")
    return request.param


@pytest.fixture(scope="module")
def config(compose: list[str]) -> dict:
    result = _config(compose, BOUNDSWEEP_API_TOKEN="t0ken-for-the-test")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_config_passes_and_has_every_role(config: dict) -> None:
    assert set(config["services"]) == {"postgres", "api", "scheduler", "worker", "dashboard"}


def test_postgres_has_a_pg_isready_healthcheck_and_a_volume(config: dict) -> None:
    postgres = config["services"]["postgres"]
    assert postgres["image"].startswith("postgres:16")
    test = postgres["healthcheck"]["test"]
    assert "pg_isready" in (test if isinstance(test, str) else " ".join(test))
    assert any("/var/lib/postgresql/data" in str(v) for v in postgres["volumes"])


@pytest.mark.parametrize("service", ["api", "scheduler", "worker", "dashboard"])
def test_every_role_waits_for_a_healthy_database(config: dict, service: str) -> None:
    depends_on = config["services"][service]["depends_on"]
    assert depends_on["postgres"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", ["scheduler", "worker", "dashboard"])
def test_the_others_wait_for_the_api_that_migrates(config: dict, service: str) -> None:
    assert config["services"][service]["depends_on"]["api"]["condition"] == "service_healthy"
    assert config["services"]["api"]["command"][0] == "serve"
    assert "healthz" in " ".join(config["services"]["api"]["healthcheck"]["test"])


def test_every_role_uses_postgres_and_the_token_from_the_environment(config: dict) -> None:
    for name in ("api", "scheduler", "worker", "dashboard"):
        env = config["services"][name]["environment"]
        assert env["BOUNDSWEEP_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in env["BOUNDSWEEP_DATABASE_URL"]
        assert env["BOUNDSWEEP_API_TOKEN"] == "t0ken-for-the-test"


def test_workers_reserve_one_nvidia_gpu_each_and_can_scale(config: dict) -> None:
    worker = config["services"]["worker"]
    assert worker["command"][0] == "worker"
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert int(device["count"]) == 1
    assert "gpu" in device["capabilities"]
    # `--scale worker=N` needs distinct container names and no fixed host port.
    assert "container_name" not in worker
    assert "ports" not in worker


def test_the_api_token_is_required(compose: list[str]) -> None:
    result = _config(compose)
    assert result.returncode != 0
    assert "BOUNDSWEEP_API_TOKEN" in result.stderr


def test_the_dockerfile_installs_the_package_and_runs_the_cli() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in dockerfile.splitlines()]
    assert "FROM python:3.11-slim" in lines
    assert any(line.startswith("RUN pip install torch") for line in lines)
    assert 'ENTRYPOINT ["boundsweep"]' in lines
    # Every package the entry point imports is copied into the image.
    for package in ("optimizers", "studies", "workers", "service"):
        assert f"COPY {package} ./{package}" in lines
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored
