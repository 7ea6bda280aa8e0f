"""docker-compose.yml and the Dockerfile: the compose tools accept them, with the shape we rely on.

Every check runs on the Compose specification's JSON schema (``_compose_config``: interpolation,
validation, the long forms ``config`` prints), so it runs on any machine, and also through
`docker-compose config` (Debian's 1.29) and `docker compose config` (v2) wherever those are
installed: they parse, validate and interpolate the real file; the tests then check the result.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.service._compose_config import ComposeConfigError, compose_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA = "compose-spec schema"
"""The validator that needs no compose tool (``_compose_config``)."""


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


VALIDATORS = [[SCHEMA], *_compose_commands()]


def _config(compose: list[str], path: Path = COMPOSE_FILE, **env: str) -> tuple[dict | None, str]:
    """What ``compose`` makes of ``path``: the configuration (None when it refuses the file)
    and its error output."""
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("BOUNDSWEEP_", "POSTGRES_"))
    }
    environ.update(env)
    if compose == [SCHEMA]:
        try:
            return compose_config(path, environ), ""
        except ComposeConfigError as exc:
            return None, str(exc)
    result = subprocess.run(
        [*compose, "-f", str(path), "config"],
        capture_output=True,
        text=True,
        env=environ,
        cwd=path.parent,
        timeout=60,
    )
    return (yaml.safe_load(result.stdout) if result.returncode == 0 else None), result.stderr


@pytest.fixture(scope="module", params=VALIDATORS, ids=lambda c: " ".join(c))
def compose(request: pytest.FixtureRequest) -> list[str]:
    return request.param


@pytest.fixture(scope="module")
def config(compose: list[str]) -> dict:
    parsed, errors = _config(compose, BOUNDSWEEP_API_TOKEN="t0ken-for-the-test")
    assert parsed is not None, errors
    return parsed


def test_config_passes_and_has_every_role(config: dict) -> None:
    assert set(config["services"]) == {
        "postgres",
        "pgbouncer",
        "api",
        "scheduler",
        "worker",
        "dashboard",
    }


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
    assert depends_on["pgbouncer"]["condition"] == "service_started"


@pytest.mark.parametrize("service", ["scheduler", "worker", "dashboard"])
def test_the_others_wait_for_the_api_that_migrates(config: dict, service: str) -> None:
    assert config["services"][service]["depends_on"]["api"]["condition"] == "service_healthy"
    assert config["services"]["api"]["command"][0] == "serve"


def test_every_role_uses_postgres_and_the_token_from_the_environment(config: dict) -> None:
    for name in ("api", "scheduler", "worker", "dashboard"):
        env = config["services"][name]["environment"]
        assert env["BOUNDSWEEP_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@pgbouncer:6432/" in env["BOUNDSWEEP_DATABASE_URL"]  # through the pooler
        assert env["BOUNDSWEEP_API_TOKEN"] == "t0ken-for-the-test"


def test_pgbouncer_pools_transactions_within_postgres_connection_limit(config: dict) -> None:
    """Workers hold a client connection each; PgBouncer shares a bounded pool of server
    connections among them, one transaction at a time (what boundsweep is written for)."""
    bouncer = config["services"]["pgbouncer"]
    env = bouncer["environment"]
    assert bouncer["image"].startswith("edoburu/pgbouncer:")
    assert env["POOL_MODE"] == "transaction"
    assert (env["DB_HOST"], env["DB_PORT"], env["LISTEN_PORT"]) == ("postgres", "5432", "6432")
    assert (env["DB_USER"], env["DB_NAME"]) == ("boundsweep", "boundsweep")
    assert env["DB_PASSWORD"] == config["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    # PostgreSQL's default max_connections is 100: the pool stays under it, with room for
    # an operator's psql; the clients are many (one per worker process, a few per API).
    assert int(env["DEFAULT_POOL_SIZE"]) <= int(env["MAX_DB_CONNECTIONS"]) <= 90
    assert int(env["MAX_CLIENT_CONN"]) >= 1000
    assert bouncer["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "ports" not in bouncer  # reached inside the compose network only


def test_one_worker_container_takes_every_gpu_and_runs_a_process_per_gpu(config: dict) -> None:
    """Compose gives every replica of a service the same devices, so "one replica per GPU"
    (`count: 1` and `--scale`) would put every replica on GPU 0; one container with every
    GPU that starts a worker process per GPU gives each process its own."""
    worker = config["services"]["worker"]
    assert worker["command"] == ["worker", "--gpus", "all"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert device["count"] == "all"
    assert "gpu" in device["capabilities"]
    assert "device_ids" not in device
    # Other hosts run the same service: no fixed container name, no host port.
    assert "container_name" not in worker
    assert "ports" not in worker


def test_api_scheduler_and_dashboard_use_the_slim_image_workers_the_cuda_one(
    config: dict,
) -> None:
    for name in ("api", "scheduler", "dashboard"):
        service = config["services"][name]
        assert service["build"]["target"] == "service", name
        assert service["image"] == "boundsweep-service:latest", name
        assert "deploy" not in service, name  # no GPU reserved
    worker = config["services"]["worker"]
    assert (worker["build"]["target"], worker["image"]) == ("worker", "boundsweep-worker:latest")


def test_the_api_is_healthy_only_when_ready(config: dict) -> None:
    test = " ".join(config["services"]["api"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/readyz" in test and "healthz" not in test


def test_the_api_token_is_required(compose: list[str]) -> None:
    parsed, errors = _config(compose)
    assert parsed is None
    assert "BOUNDSWEEP_API_TOKEN" in errors


MINIMAL = {
    "services": {
        "db": {"image": "postgres:16", "healthcheck": {"test": ["CMD", "pg_isready"]}},
        "app": {
            "image": "app:${TAG:-latest}",
            "environment": ["PLAIN=1", "PRICE=$$5"],
            "depends_on": {"db": {"condition": "service_healthy"}},
        },
    }
}


def _write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_small_valid_file_is_accepted_and_interpolated(
    compose: list[str], tmp_path: Path
) -> None:
    parsed, errors = _config(compose, _write(tmp_path, MINIMAL), TAG="v2")
    assert parsed is not None, errors
    app = parsed["services"]["app"]
    assert app["image"] == "app:v2"
    # `$$` is a literal `$`, not a variable; `config` prints it escaped again.
    assert app["environment"] == {"PLAIN": "1", "PRICE": "$$5"}
    assert app["depends_on"]["db"]["condition"] == "service_healthy"


@pytest.mark.parametrize(
    ("where", "broken", "named"),
    [
        (["services", "app"], {"imagee": "typo"}, "imagee"),
        (["services", "app", "depends_on", "db"], {"condition": "service_happy"}, "service_happy"),
        (["services", "db", "healthcheck"], {"retries": ["three"]}, "retries"),
        (["services", "app"], {"ports": {"8000": 8000}}, "ports"),
        ([], {"servics": {}}, "servics"),
    ],
    ids=["unknown-key", "unknown-condition", "wrong-type", "mapping-not-list", "top-level-typo"],
)
def test_a_broken_file_is_refused_with_the_field_named(
    compose: list[str], tmp_path: Path, where: list[str], broken: dict, named: str
) -> None:
    document = yaml.safe_load(yaml.safe_dump(MINIMAL))
    target = document
    for key in where:
        target = target[key]
    target.update(broken)
    parsed, errors = _config(compose, _write(tmp_path, document))
    assert parsed is None
    assert named in errors, errors


def _stages(dockerfile: str) -> dict[str, list[str]]:
    """The Dockerfile's lines per stage name (``FROM ... AS name``)."""
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for raw in dockerfile.splitlines():
        line = raw.strip()
        if line.startswith("FROM "):
            current = stages.setdefault(line.split()[-1], [line])
        elif line and not line.startswith("#"):
            current.append(line)
    return stages


def test_the_dockerfile_builds_a_slim_service_image_and_a_cuda_worker_image() -> None:
    stages = _stages((ROOT / "Dockerfile").read_text())
    assert list(stages) == ["base", "service", "worker"]
    assert stages["base"][0] == "FROM python:3.11-slim AS base"
    for name in ("service", "worker"):
        lines = stages[name]
        assert lines[0] == f"FROM base AS {name}"
        assert 'ENTRYPOINT ["boundsweep"]' in lines and "USER boundsweep" in lines
        # What `pip install '.[service]'` needs (setup.py maps the folders, LICENSE is in the
        # metadata), and every package the entry point imports; the extra brings the CLI's
        # dependencies (the base package is the optimizers alone).
        assert "COPY pyproject.toml setup.py README.md LICENSE ./" in lines
        for package in ("optimizers", "studies", "workers", "service"):
            assert f"COPY {package} ./{package}" in lines
        assert lines.index("RUN pip install '.[service]'") > max(
            i for i, x in enumerate(lines) if "COPY" in x
        )
    # The slim image: the CPU-only torch wheel (the base package needs torch), no compiler.
    service = " ".join(stages["service"])
    assert "download.pytorch.org/whl/cpu torch==2.14.1" in service
    assert "gcc" not in service and "nvidia" not in service
    assert stages["service"][-1] == 'CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]'
    # The worker: PyPI's CUDA build (Triton comes with it) and gcc for the CPU kernel.
    worker = stages["worker"]
    assert "RUN pip install torch==2.14.1 torchvision==0.29.1" in worker
    assert any("gcc" in line for line in worker)
    assert worker[-1] == 'CMD ["worker", "--gpus", "all"]'
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored
    assert "setup.py" not in ignored and "LICENSE" not in ignored
