"""One campaign whose task a worker or the API does not have never stops the others.

Real processes on PostgreSQL: the campaign is submitted by a ``boundsweep submit`` that has the
plugin (``BOUNDSWEEP_PLUGINS``); a plain ``boundsweep worker --until-idle`` without it runs the
other campaign to the end, skips this one with one line, and exits 0; the API without it
answers the campaign's detail, trials and report with 409 naming what is missing, never 500.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from boundsweep.studies.storage import campaign_progress, open_storage

from tests._plugins import TASK, boundsweep, env, submit, write_plugin
from tests.service._live_api import api_client

pytestmark = pytest.mark.postgres

DIGITS = {
    "name": "digits-runs",
    "task": "digits_mlp",
    "seeds": [0, 1],
    "budget": {"epochs": 1, "max_steps": 2},
    "arms": [{"optimizer": "sgdm", "space": {"lr": {"grid": [0.01, 0.1]}}}],
}
PLUGGED = {
    "name": "needs-a-plugin",
    "task": TASK,
    "seeds": [0, 1],
    "budget": {"epochs": 2},
    "arms": [{"optimizer": "adam", "space": {"lr": {"grid": [0.001, 0.01]}}}],
}


def _counts(url: str, name: str) -> dict[str, int]:
    arms = campaign_progress(open_storage(url), name)
    return {k: sum(getattr(a, k) for a in arms) for k in ("total", "waiting", "complete", "fail")}


def test_a_worker_without_the_plugin_runs_the_rest_and_the_api_says_not_installed(
    postgres_url: str, tmp_path: Path
) -> None:
    plugin = write_plugin(tmp_path / "plugin")
    submit(postgres_url, PLUGGED, tmp_path, env(plugin))
    submit(postgres_url, DIGITS, tmp_path, env())

    plain = boundsweep(
        "worker", "--storage", postgres_url, "--until-idle", "--poll-interval", "0.2",
        env=env(),
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert "Traceback" not in plain.stderr
    skipped = [line for line in plain.stderr.splitlines() if "skipped on this worker" in line]
    assert len(skipped) == 1, plain.stderr[-3000:]
    assert PLUGGED["name"] in skipped[0] and f"task {TASK!r} is not installed" in skipped[0]
    # The campaign recorded what provided its task at creation: the line says what to set.
    assert "it came from module bs_only_here: set BOUNDSWEEP_PLUGINS=bs_only_here" in skipped[0]
    assert _counts(postgres_url, DIGITS["name"]) == {
        "total": 4, "waiting": 0, "complete": 4, "fail": 0,
    }  # fmt: skip
    assert _counts(postgres_url, PLUGGED["name"]) == {
        "total": 4, "waiting": 4, "complete": 0, "fail": 0,
    }  # fmt: skip
    report = boundsweep("report", PLUGGED["name"], "--storage", postgres_url, env=env())
    assert report.returncode == 2 and "Traceback" not in report.stderr, report.stderr[-3000:]
    [line] = report.stderr.strip().splitlines()
    assert f"task {TASK!r} is not installed here" in line
    # Its status names the worker that lacks the task, and what it lacks.
    status = boundsweep("status", PLUGGED["name"], "--storage", postgres_url, env=env(plugin))
    [lacking] = [line for line in status.stdout.splitlines() if "skips it" in line]
    assert f"task {TASK!r} is not installed here" in lacking, status.stdout

    with api_client(postgres_url) as client:
        listed = client.get("/api/v1/campaigns").json()["data"]
        assert {c["name"] for c in listed} >= {DIGITS["name"], PLUGGED["name"]}
        for path in ("", "/trials", "/report", "/report?format=json"):
            response = client.get(f"/api/v1/campaigns/{PLUGGED['name']}{path}")
            assert response.status_code == 409, (path, response.status_code, response.text)
            assert "not installed here" in response.json()["detail"], path
        assert client.get(f"/api/v1/campaigns/{DIGITS['name']}/report").status_code == 200
        assert TASK not in {t["name"] for t in client.get("/api/v1/tasks").json()["data"]}

    # A worker that has the plugin runs it, and every trial names where its task came from.
    equipped = boundsweep(
        "worker", "--storage", postgres_url, "--until-idle", "--poll-interval", "0.2",
        env=env(plugin),
    )  # fmt: skip
    assert equipped.returncode == 0, equipped.stderr[-3000:]
    assert _counts(postgres_url, PLUGGED["name"])["complete"] == 4
    with api_client(postgres_url) as client:  # the API still lacks it; a worker told why
        assert client.get(f"/api/v1/campaigns/{PLUGGED['name']}").status_code == 409
    trials = optuna.load_study(study_name=f"{PLUGGED['name']}/adam", storage=postgres_url).trials
    assert {t.user_attrs["task_origin"] for t in trials} == {"module:bs_only_here local"}
    assert {t.user_attrs["optimizer_origin"].split()[0] for t in trials} == {"boundsweep"}
    assert sorted(t.value for t in trials) == [2.0, 2.0, 3.0, 3.0]
