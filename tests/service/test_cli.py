"""The ``boundsweep`` command on real storages: help, submit, worker, status, report, serve."""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from boundsweep.service.cli import build_parser, main
from boundsweep.service.db import Schedule, make_engine, migrate
from boundsweep.studies.campaign import (
    MAX_DOCUMENT_BYTES,
    MAX_DOCUMENT_VALUES,
    MAX_YAML_ALIASES,
    CampaignSpec,
    parse_yaml,
)
from boundsweep.studies.storage import list_campaigns, open_storage
from sqlalchemy.orm import Session

COMMANDS = [
    "serve",
    "worker",
    "scheduler",
    "dashboard",
    "submit",
    "status",
    "requeue",
    "report",
    "demo",
    "tasks",
    "optimizers",
]


def _tiny_spec(name: str = "cli-tiny") -> CampaignSpec:
    """Two arms on the small digits task, a few optimizer steps per trial: seconds in all."""
    return CampaignSpec.model_validate(
        {
            "name": name,
            "task": "digits_mlp",
            "seeds": [0, 1],
            "budget": {"epochs": 2, "max_steps": 6},
            "arms": [
                {"optimizer": "adabound", "space": {"final_lr": {"grid": [0.03, 0.3]}}},
                {"optimizer": "sgdm", "space": {"lr": {"grid": [0.01, 0.1]}}},
            ],
        }
    )


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``boundsweep argv...`` in this process; (exit status, stdout, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse: --help and usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples_and_storage(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert f"usage: boundsweep {command}" in out
    assert "examples:" in out
    assert f"boundsweep {command}" in out.split("examples:")[1]
    # The catalog commands list what is installed in this process: they read no storage.
    assert ("--storage URL" in out) == (command not in {"tasks", "optimizers"})


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in COMMANDS:
        assert f"    {command}" in out
    assert set(build_parser()._subparsers._group_actions[0].choices) == set(COMMANDS)


def test_the_installed_entry_point_runs() -> None:
    script = Path(sys.executable).parent / "boundsweep"
    result = subprocess.run([script, "status", "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "usage: boundsweep status" in result.stdout


def test_version_comes_from_the_installed_metadata() -> None:
    script = Path(sys.executable).parent / "boundsweep"
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"boundsweep {importlib.metadata.version('boundsweep')}\n"


_NO_ALEMBIC_RUN = r"""
import contextlib, io, sys
from boundsweep.service.cli import main

for argv in (["--version"], ["--help"], ["status", "--help"], ["report", "--help"],
             ["submit", "--preset", "paper-robustness", "--dry-run"]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main(argv)
    assert "alembic" not in sys.modules, f"boundsweep {' '.join(argv)} imported alembic"
from boundsweep.service.db import migrate

migrate(sys.argv[1])
assert "alembic" in sys.modules
print("ok")
"""


def test_only_the_commands_that_migrate_import_alembic(sqlite_url: str) -> None:
    # alembic takes 0.1-0.3 s to import; --version, --help and a dry run never migrate.
    done = subprocess.run(
        [sys.executable, "-c", _NO_ALEMBIC_RUN, sqlite_url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.endswith("ok\n")


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["status"], ["submit", "--preset", "paper-robustness", "--dry-run"]],
    ids=["help", "status", "dry-run"],
)
def test_output_piped_to_a_reader_that_stops_early_ends_quietly(
    argv: list[str], sqlite_url: str
) -> None:
    script = Path(sys.executable).parent / "boundsweep"
    storage = [] if argv == ["--help"] else ["--storage", sqlite_url]
    # As in a shell: `boundsweep ... | head -1`.
    piped = subprocess.run(
        f"{script} {' '.join(argv + storage)} | head -1",
        shell=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr
    assert len(piped.stdout.splitlines()) == 1
    # The reader gone before the first write: the write itself meets the closed pipe.
    process = subprocess.Popen(
        [script, *argv, *storage], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()
    errors = process.stderr.read().decode()
    process.wait(timeout=120)
    process.stderr.close()
    assert errors == "", errors
    assert process.returncode in (0, 128 + signal.SIGPIPE)


def test_unknown_preset_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "submit", "--preset", "paper-robustnes", "--dry-run")
    assert code == 2
    assert "unknown preset 'paper-robustnes'" in err
    assert "adabound-betas, paper-robustness" in err
    assert "Traceback" not in out + err


def test_bad_files_are_clear_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sqlite_url: str
) -> None:
    code, _, err = run(capsys, "submit", str(tmp_path / "missing.yaml"), "--storage", sqlite_url)
    assert (code, err.strip()) == (
        2,
        f"boundsweep submit: error: {tmp_path / 'missing.yaml'}: no such file",
    )

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: Has Spaces\ntask: mnist1d_mlp\nseeds: [0]\narms: [{optimizer: lbfgs}]\n")
    code, _, err = run(capsys, "submit", str(bad), "--storage", sqlite_url)
    assert code == 2
    assert "invalid campaign spec" in err
    assert "name:" in err and "arms.0" in err
    assert "Traceback" not in err

    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    code, _, err = run(capsys, "submit", str(broken), "--storage", sqlite_url)
    assert code == 2 and "Traceback" not in err


_SPEC_YAML = "name: hostile\ntask: digits_mlp\nseeds: [0]\narms: [{optimizer: adam}]\n"
_HOSTILE_FILES = {
    "deep.json": "[" * 10_000 + "]" * 10_000,
    "deep.yaml": _SPEC_YAML + "description: " + "[" * 10_000 + "]" * 10_000 + "\n",
    "deep-object.json": '{"a":' * 10_000 + "1" + "}" * 10_000,
    "huge-seed.yaml": _SPEC_YAML.replace("[0]", "[" + "9" * 5000 + "]"),
    "huge-seed.json": json.dumps(
        {"name": "hostile", "task": "digits_mlp", "arms": [{"optimizer": "adam"}]}
    ).replace("}]", '}], "seeds": [' + "9" * 5000 + "]"),
    "huge-epochs.yaml": _SPEC_YAML + "budget: {epochs: " + "9" * 5000 + "}\n",
    "epochs-1e9.yaml": _SPEC_YAML + "budget: {epochs: 1000000000}\n",
    "epochs-1e30.yaml": _SPEC_YAML + "budget: {epochs: " + str(10**30) + "}\n",
    "boolean-seeds.yaml": _SPEC_YAML.replace("[0]", "[true, false]"),
    "nul.json": json.dumps(
        {"name": "h", "task": "digits_mlp", "arms": [{"optimizer": "adam"}], "description": "\0"}
    ),
    "bell.yaml": _SPEC_YAML + 'description: "a\\x07b"\n',
    "not-a-mapping.yaml": "- 1\n- 2\n",
}


@pytest.mark.parametrize("name", sorted(_HOSTILE_FILES))
def test_hostile_spec_files_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sqlite_url: str, name: str
) -> None:
    path = tmp_path / name
    path.write_text(_HOSTILE_FILES[name])
    code, _, err = run(capsys, "submit", str(path), "--storage", sqlite_url)
    assert code == 2, err
    assert err.startswith("boundsweep submit: error: ") and "Traceback" not in err
    # One line, or one naming the problem and one per bad field.
    assert all(line.startswith("  ") for line in err.strip().splitlines()[1:]), err


def _laughs(levels: int) -> str:
    """A YAML "billion laughs": a few hundred bytes whose aliases expand to 9**levels lols."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _values(n: int) -> str:
    return _SPEC_YAML.replace("seeds: [0]", "seeds: [" + ", ".join(["0"] * n) + "]")


# Refused before anything is built from them: (file, its text, the one line it gets).
_EXPANSIONS = {
    "billion-laughs.yaml": (
        _laughs(9),
        f"the document holds more than {MAX_DOCUMENT_VALUES:,} values (the limit; "
        "a YAML alias counts as every value it repeats)",
    ),
    "aliases.yaml": (
        _SPEC_YAML + "x: &one 1\ny: [" + ", ".join(["*one"] * (MAX_YAML_ALIASES + 1)) + "]\n",
        f"the document uses more than {MAX_YAML_ALIASES} YAML aliases (the limit)",
    ),
    "values.yaml": (
        _values(MAX_DOCUMENT_VALUES),
        f"the document holds more than {MAX_DOCUMENT_VALUES:,} values (the limit; "
        "a YAML alias counts as every value it repeats)",
    ),
    "million-seeds.yaml": (_values(10**6), "the document is {size:,} bytes; the limit is "
                           f"{MAX_DOCUMENT_BYTES:,} bytes"),
    "million-seeds.json": (
        json.dumps({"name": "h", "task": "digits_mlp", "seeds": list(range(10**6))}),
        f"the document is {{size:,}} bytes; the limit is {MAX_DOCUMENT_BYTES:,} bytes",
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(_EXPANSIONS))
def test_expanding_or_oversized_spec_files_are_refused_before_reading_them_whole(
    tmp_path: Path, name: str
) -> None:
    # The real command in a fresh process: a billion laughs spun for 20 min when its aliases
    # were expanded before being counted (the timeout turns such a hang into a failure).
    text, message = _EXPANSIONS[name]
    path = tmp_path / name
    path.write_text(text)
    done = subprocess.run(
        [Path(sys.executable).parent / "boundsweep", "submit", str(path)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    line = message.format(size=path.stat().st_size)
    assert done.stderr.splitlines() == [f"boundsweep submit: error: {path}: {line}"]
    assert done.stdout == "" and not (tmp_path / "boundsweep.db").exists()


def test_a_valid_spec_near_the_value_limit_is_read() -> None:
    # The limits refuse what no campaign needs, not a large real one: 32 arms of 1,000-point
    # grids (about 33,000 values) parse.
    arms = [
        {"name": f"a{i}", "optimizer": "adam", "space": {"lr": {"grid": [1e-3] * 1000}}}
        for i in range(32)
    ]
    document = {"name": "big", "task": "digits_mlp", "seeds": [0], "arms": arms}
    text = yaml.safe_dump(document)
    assert len(text) < MAX_DOCUMENT_BYTES
    assert parse_yaml(text) == document


@pytest.mark.parametrize(
    "value", ["[" * 5000, "9" * 5000, "[true]"], ids=["deep", "huge-int", "bool"]
)
def test_hostile_set_values_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], value: str
) -> None:
    code, _, err = run(capsys, "submit", "--preset", "paper-robustness", f"--set=seeds={value}")
    assert code == 2 and "Traceback" not in err and "seeds" in err, err


def test_hostile_input_leaves_the_real_command_without_a_traceback(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text(_HOSTILE_FILES["deep.yaml"])
    done = subprocess.run(
        [sys.executable, "-m", "boundsweep.service.cli", "submit", str(deep)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"boundsweep submit: error: {deep}: nested deeper than the limit of 32 levels"
    ]
    assert not (tmp_path / "boundsweep.db").exists()  # nothing written


@pytest.mark.parametrize("command", ["status", "submit", "worker", "scheduler", "serve"])
def test_a_wrong_or_unreachable_storage_is_one_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    postgres_url: str,
    command: str,
) -> None:
    extra = {
        "submit": ["--preset", "paper-robustness"],
        "worker": ["--until-idle"],
        "scheduler": ["--once"],
    }.get(command, [])
    prefix = f"boundsweep {command}: error: "
    missing_db = postgres_url + "_gone"  # the real server answers: no such database
    port = postgres_url.rsplit(":", 1)[1].split("/", 1)[0]  # 5432, or the suite's own server's
    cases = [
        (
            ["--storage", "mysql+nodriver://x/y"],
            2,
            "--storage 'mysql+nodriver://x/y' is not a database URL boundsweep can use",
        ),
        (
            ["--storage", "postgresql+psycopg://bs:hunter2@127.0.0.1:1/bs"],
            1,
            "cannot use the database postgresql+psycopg://bs:***@127.0.0.1:1/bs: ",
        ),
        (
            ["--storage", missing_db],
            1,
            f"cannot use the database {missing_db}: connection failed: connection to server at "
            f'"127.0.0.1", port {port} failed: FATAL:  database "{missing_db.rsplit("/", 1)[1]}"',
        ),
        (
            ["--storage", f"sqlite:///{tmp_path / 'no-such-folder' / 'bs.db'}"],
            1,
            "cannot use the database sqlite:///",
        ),
    ]
    for storage, status, message in cases:
        code, out, err = run(capsys, command, *extra, *storage)
        assert code == status, err
        assert err.startswith(prefix + message), err
        assert len(err.strip().splitlines()) == 1 and "hunter2" not in out + err
    monkeypatch.setenv("BOUNDSWEEP_DATABASE_URL", "not a url")
    code, _, err = run(capsys, command, *extra)
    assert code == 2
    assert err.startswith(prefix + "BOUNDSWEEP_DATABASE_URL 'not a url' is not a database URL")
    assert "sqlite:///FILE.db or postgresql+psycopg://USER@HOST:PORT/DATABASE" in err


def test_set_overrides_reach_the_spec(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "submit",
        "--preset",
        "paper-robustness",
        "--name",
        "overridden",
        "--set",
        "budget.epochs=4",
        "--set",
        "seeds=[5, 6]",
        "--set",
        "grid_width=3",
        "--dry-run",
    )
    assert code == 0, err
    spec = CampaignSpec.from_yaml(out)
    assert spec.name == "overridden"
    assert spec.budget.epochs == 4
    assert spec.seeds == [5, 6]
    assert spec.arm("adabound").space["final_lr"].grid == [0.03, 0.1, 0.3]

    code, _, err = run(capsys, "submit", "--preset", "paper-robustness", "--set", "epochs")
    assert code == 2 and "expected KEY=VALUE" in err


def test_submit_work_status_report_on_a_real_storage(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, storage_url: str
) -> None:
    spec_file = tmp_path / "campaign.yaml"
    spec_file.write_text(_tiny_spec().to_yaml())

    code, out, err = run(capsys, "submit", str(spec_file), "--storage", storage_url)
    assert code == 0, err
    assert "submitted campaign 'cli-tiny'" in out

    code, _, err = run(capsys, "submit", str(spec_file), "--storage", storage_url)
    assert code == 2 and "already exists" in err

    code, out, _ = run(capsys, "status", "--storage", storage_url)
    assert out.split() == ["cli-tiny"]
    code, out, _ = run(capsys, "status", "cli-tiny", "--storage", storage_url)
    assert code == 0
    assert out.splitlines()[0] == "cli-tiny: 0/8 trials finished"
    assert out.splitlines()[1].split()[:4] == ["arm", "optimizer", "finished", "total"]
    assert [line.split()[:4] for line in out.splitlines()[2:]] == [
        ["adabound", "adabound", "0", "4"],
        ["sgdm", "sgdm", "0", "4"],
    ]

    code, _, err = run(capsys, "worker", "--until-idle", "--storage", storage_url)
    assert code == 0, err

    code, out, _ = run(capsys, "status", "cli-tiny", "--json", "--storage", storage_url)
    rows = json.loads(out)
    assert [(r["arm"], r["complete"], r["total"], r["done"]) for r in rows] == [
        ("adabound", 4, 4, True),
        ("sgdm", 4, 4, True),
    ]

    html, pngs = tmp_path / "out" / "report.html", tmp_path / "figures"
    code, out, err = run(
        capsys,
        "report",
        "cli-tiny",
        "--storage",
        storage_url,
        "--html",
        str(html),
        "--png-dir",
        str(pngs),
    )
    assert code == 0, err
    assert out.splitlines()[0].startswith("cli-tiny (digits_mlp")
    assert "8 completed trials in 2 arms" in out.splitlines()[0]
    assert f"report: {html}" in out
    assert html.read_text().lstrip().lower().startswith("<!doctype html")
    assert any(p.suffix == ".png" for p in pngs.iterdir())

    code, out, err = run(capsys, "report", "cli-tiny", "--json", "--storage", storage_url)
    assert code == 0
    assert json.loads(out)["campaign"] == "cli-tiny"

    code, _, err = run(capsys, "report", "nope", "--storage", storage_url)
    assert (code, err.strip()) == (
        2,
        f"boundsweep report: error: no campaign named 'nope' in {storage_url}",
    )
    code, _, err = run(capsys, "status", "nope", "--storage", storage_url)
    assert code == 2 and "no campaign named 'nope'" in err


def test_storage_comes_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    monkeypatch.setenv("BOUNDSWEEP_DATABASE_URL", sqlite_url)
    code, out, _ = run(capsys, "status")
    assert code == 0
    assert out.strip() == f"no campaigns yet in {sqlite_url}"


def test_without_a_storage_every_command_uses_the_same_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import boundsweep.service.cli
    from boundsweep.studies.storage import DEFAULT_STORAGE

    assert boundsweep.service.cli.DEFAULT_STORAGE == DEFAULT_STORAGE == "sqlite:///boundsweep.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOUNDSWEEP_DATABASE_URL", "")  # empty counts as unset
    code, out, _ = run(capsys, "status")
    assert (code, out.strip()) == (0, "no campaigns yet in sqlite:///boundsweep.db")
    code, _, err = run(capsys, "worker", "--until-idle")
    assert code == 0, err
    assert (tmp_path / "boundsweep.db").is_file()


def test_submit_registers_the_campaign_for_the_api(
    capsys: pytest.CaptureFixture[str], sqlite_url: str
) -> None:
    import sqlalchemy as sa

    code, _, err = run(
        capsys,
        "submit",
        "--preset",
        "paper-robustness",
        "--set",
        "grid_width=1",
        "--storage",
        sqlite_url,
    )
    assert code == 0, err
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, created_by FROM bs_campaigns")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("paper-robustness-mnist1d-mlp", "cli")]


def test_scheduler_once_exits(capsys: pytest.CaptureFixture[str], sqlite_url: str) -> None:
    code, out, err = run(capsys, "scheduler", "--once", "--storage", sqlite_url)
    assert code == 0, err
    assert out.strip() == "scheduler: 0 campaign(s) created"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


@pytest.mark.parametrize(
    ("command", "probe"),
    [("serve", "/healthz"), ("dashboard", "/api/studies")],
)
def test_servers_start_answer_and_stop_on_sigterm(
    sqlite_url: str, command: str, probe: str
) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNDSWEEP_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "boundsweep.service.cli",
            command,
            "--storage",
            sqlite_url,
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                status, body = _get(f"http://127.0.0.1:{port}{probe}")
                break
            except OSError:
                assert time.monotonic() < deadline, f"{command} did not answer in 90 s"
                time.sleep(0.3)
        assert status == 200
        status, page = _get(f"http://127.0.0.1:{port}/dashboard")
        assert status == 200 and b"<html" in page.lower()
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught so the exit status
    # says how the process ended.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Finished server process" in output
    assert "Traceback" not in output


# Runs in a fresh interpreter: every command the service runs without training, each on the
# real storage, then the servers (API and dashboard) answering real requests on loopback.
# After each step torch must still be absent (it takes seconds and ~800 MB to load).
_TORCH_FREE_RUN = r"""
import json, socket, sys, threading, time, urllib.request
from pathlib import Path

from boundsweep.service.cli import main

url, spec_file, finished, out = sys.argv[1:5]
steps = []


def check(step):
    assert "torch" not in sys.modules, f"{step} imported torch"
    steps.append(step)


def command(*argv):
    assert main([*argv, "--storage", url]) == 0, argv
    check(" ".join(argv[:2]))


command("submit", spec_file)
command("status")
command("status", "torch-free")
command("report", finished)
command("report", finished, "--json", "--html", f"{out}/r.html", "--png-dir", f"{out}/png")
command("scheduler", "--once")

import uvicorn
from boundsweep.service.app import create_app
from boundsweep.service.dashboard import DashboardAccess, dashboard_asgi
from boundsweep.service.settings import Settings


def serve(app, lifespan, requests):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive()
        time.sleep(0.02)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        for method, path, body in requests:
            data = None if body is None else json.dumps(body).encode()
            request = urllib.request.Request(base + path, data=data, method=method)
            request.add_header("Authorization", "Bearer t0ken")
            request.add_header("Content-Type", "application/json")
            with urllib.request.urlopen(request, timeout=120) as answer:
                assert answer.status in (200, 201), (path, answer.status)
            check(f"{method} {path}")
    finally:
        server.should_exit = True
        thread.join(timeout=15)


body = {"preset": "paper-robustness", "name": "via-api",
        "overrides": {"task": "digits_mlp", "grid_width": 1, "seeds": [0]}}
serve(create_app(Settings(database_url=url, api_token="t0ken", dashboard=True)), "on", [
    ("GET", "/healthz", None),
    ("POST", "/api/v1/campaigns", body),
    ("GET", "/api/v1/campaigns/via-api", None),
    ("GET", "/api/v1/campaigns/via-api/trials", None),
    ("GET", f"/api/v1/campaigns/{finished}/report", None),
    ("GET", f"/api/v1/campaigns/{finished}/report?format=html", None),
    ("GET", "/api/v1/schedules/every-minute/trend", None),
    ("GET", "/dashboard", None),
])
serve(dashboard_asgi(url, DashboardAccess(api_token="t0ken")), "auto", [("GET", "/dashboard", None)])
print(json.dumps(steps))
"""


def test_submit_status_report_scheduler_serve_and_dashboard_never_load_torch(
    tmp_path: Path, sqlite_url: str
) -> None:
    # A finished campaign, trained by a real worker (the one command that loads torch).
    finished = _tiny_spec("finished")
    finished_file = tmp_path / "finished.yaml"
    finished_file.write_text(finished.to_yaml())
    assert main(["submit", str(finished_file), "--storage", sqlite_url]) == 0
    worker = subprocess.run(
        [sys.executable, "-m", "boundsweep.workers", "--storage", sqlite_url, "--until-idle"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr
    spec_file = tmp_path / "torch-free.yaml"
    spec_file.write_text(_tiny_spec("torch-free").to_yaml())
    _add_minutely_schedule(sqlite_url)

    done = subprocess.run(
        [sys.executable, "-c", _TORCH_FREE_RUN, sqlite_url, str(spec_file), "finished",
         str(tmp_path)],
        cwd=Path(__file__).parents[2], capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    steps = json.loads(done.stdout.strip().splitlines()[-1])
    assert steps[:6] == [
        "submit " + str(spec_file),
        "status",
        "status torch-free",
        "report finished",
        "report finished",
        "scheduler --once",
    ]
    assert len(steps) == 6 + 8 + 1
    assert (tmp_path / "r.html").stat().st_size > 10_000
    assert list((tmp_path / "png").glob("plot-*.png"))
    assert "every-minute-" in " ".join(list_campaigns(open_storage(sqlite_url)))


def _add_minutely_schedule(url: str) -> None:
    """A schedule that is due at once: `scheduler --once` creates its campaign."""
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as session:
        session.add(
            Schedule(
                name="every-minute",
                cron="* * * * *",
                timezone="UTC",
                template={
                    "preset": "paper-robustness",
                    "overrides": {"task": "digits_mlp", "grid_width": 1, "seeds": [0]},
                },
                created_at=datetime.now(UTC) - timedelta(hours=1),
            )
        )
        session.commit()
    engine.dispose()


@pytest.mark.parametrize(
    ("variable", "value", "command"),
    [
        ("BOUNDSWEEP_PORT", "abc", "serve"),
        ("BOUNDSWEEP_SCHEDULER_POLL_SECONDS", "-1", "scheduler"),
        ("BOUNDSWEEP_DEMO", "maybe", "dashboard"),
        ("BOUNDSWEEP_MAX_BODY_BYTES", "12", "serve"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sqlite_url: str,
    variable: str,
    value: str,
    command: str,
) -> None:
    monkeypatch.setenv(variable, value)
    code, _, err = run(capsys, command, "--storage", sqlite_url)
    assert code == 2
    [line] = err.strip().splitlines()
    assert line.startswith(f"boundsweep {command}: error: {variable} = {value!r}: "), line
