"""The issue's acceptance run, small: with the example package installed, a CartPole campaign
(AdaBound, Adam and pytorch-optimizer's Lion, 3 seeds) submitted over REST to a real
``boundsweep serve``, run by two worker processes at once (a plain ``boundsweep worker`` and
the ``python -m boundsweep.workers`` a ``--gpus`` parent starts per GPU), reported with
verdicts in the metric's own name, which the dashboard shows too."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests._plugins import env

pytestmark = pytest.mark.postgres

TOKEN = "plugin-test-token"
SPEC = {
    "name": "cartpole-adabound",
    "task": "cartpole_reinforce",
    "seeds": [0, 1, 2],
    "budget": {"epochs": 3},
    "arms": [
        {"optimizer": "adabound", "space": {"lr": 0.01, "final_lr": {"grid": [0.01, 0.1, 1.0]}}},
        {"optimizer": "adam", "space": {"lr": {"grid": [0.001, 0.01]}}},
        {"optimizer": "lion", "space": {"lr": {"grid": [0.0001, 0.001]}}},
    ],
    "verdicts": {
        "under_test": ["adabound"],
        "baselines": ["adam", "lion"],
        "early_reference": "adam",
        "final_reference": "lion",
    },
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _call(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_cartpole_with_a_plugin_optimizer_over_rest_two_workers_verdicts(postgres_url: str) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "boundsweep.service.cli", "serve", "--storage", postgres_url,
         "--port", str(port), "--log-level", "warning"],
        env=env(BOUNDSWEEP_API_TOKEN=TOKEN), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, server.communicate()[0]
            try:
                if _call(base, "GET", "/readyz")[0] == 200:
                    break
            except OSError:
                assert time.monotonic() < deadline, "serve did not answer in 90 s"
                time.sleep(0.3)
        status, tasks = _call(base, "GET", "/api/v1/tasks")
        cartpole = next(t for t in tasks["data"] if t["name"] == "cartpole_reinforce")
        assert (cartpole["distribution"], cartpole["metric"]) == ("boundsweep-examples", "return")
        _, optimizers = _call(base, "GET", "/api/v1/optimizers")
        assert {"lion", "adabound", "radam"} <= {o["name"] for o in optimizers["data"]}

        status, created = _call(base, "POST", "/api/v1/campaigns", SPEC)
        assert status == 201, created

        worker = [sys.executable, "-m", "boundsweep.service.cli", "worker"]
        child = [sys.executable, "-m", "boundsweep.workers", "--device", "cpu"]  # as --gpus runs
        options = ["--storage", postgres_url, "--until-idle", "--poll-interval", "0.2"]
        workers = [
            subprocess.Popen(argv + options, env=env(), stderr=subprocess.PIPE, text=True)
            for argv in (worker, child)
        ]
        outputs = [w.communicate(timeout=300)[1] for w in workers]
        for w, output in zip(workers, outputs, strict=True):
            assert w.returncode == 0, output[-3000:]
            assert "Traceback" not in output
        ran = [output.count(" done ") for output in outputs]

        status, detail = _call(base, "GET", f"/api/v1/campaigns/{SPEC['name']}")
        assert status == 200 and detail["finished"] == detail["total"] == 21, detail
        _, trials = _call(base, "GET", f"/api/v1/campaigns/{SPEC['name']}/trials?limit=100")
        workers_seen = {t["user_attrs"]["worker"] for t in trials["data"]}
        assert len(workers_seen) == 2, (workers_seen, ran)  # both processes trained trials

        status, report = _call(base, "GET", f"/api/v1/campaigns/{SPEC['name']}/report")
        assert status == 200, report
        assert (report["metric_name"], report["direction"]) == ("return", "maximize")
        assert report["delta"] == 10.0 and report["delta_kind"] == "absolute return"
        assert report["roles"]["under_test"] == ["adabound"]
        assert report["roles"]["baselines"] == ["adam", "lion"]
        [robust] = report["verdicts"]  # adabound over final_lr, against adam's and lion's lr
        assert (robust["arm"], robust["hyperparameter"]) == ("adabound", "final_lr")
        assert robust["outcome"] in ("supported", "refuted", "inconclusive"), robust
        final = next(d for d in report["dynamics"] if d["reference"] == "lion")
        assert final["arm"] == "adabound" and final["margin"] == 10.0, final
        assert "lion" in final["sentence"] and final["outcome"] in (
            "supported",
            "refuted",
            "inconclusive",
        )
        assert {a["name"] for a in report["arms"]} == {"adabound", "adam", "lion"}

        # The dashboard labels each arm's objective with the task's metric.
        with urllib.request.urlopen(f"{base}/api/studies", timeout=30) as response:
            studies = json.loads(response.read())["study_summaries"]
        study = next(s for s in studies if s["study_name"] == f"{SPEC['name']}/lion")
        with urllib.request.urlopen(f"{base}/api/studies/{study['study_id']}", timeout=30) as r:
            assert json.loads(r.read())["objective_names"] == ["return"]
    finally:
        server.terminate()
        server.communicate(timeout=30)
