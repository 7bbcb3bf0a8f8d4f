"""A real Prometheus (Debian's package; `make test-tools` installs it) scrapes the model
server's /metrics and answers queries with what the server counted."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from infra.model_server import running_model_server, trained_models  # noqa: F401 - fixtures
from infra.ports import free_port


def _prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        pytest.fail("prometheus is not installed: run `make test-tools` (Debian package)")
    return found


def _query(url: str, expr: str) -> list[dict]:
    r = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5)
    r.raise_for_status()
    return r.json()["data"]["result"]


def test_prometheus_scrapes_the_model_server(
    trained_models,  # noqa: F811
    tmp_path: Path,
):
    binary = _prometheus_binary()
    frame = trained_models.frame
    with running_model_server(
        trained_models, tmp_path / "serve.log", models={"churn": "models:/churn/1"}
    ) as server:
        with httpx.Client(base_url=server.url) as client:
            for i in range(7):
                r = client.post(
                    "/predict", json={"records": frame.iloc[i : i + 3].to_dict("records")}
                )
                assert r.status_code == 200
            assert client.post("/predict", json={"records": [{"f0": 1.0}]}).status_code == 400

        port = free_port()
        target = server.url.removeprefix("http://")
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: modelyard\n"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 - owned by the process
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            ok = errors = None
            while time.monotonic() < deadline:
                try:
                    ok = _query(url, 'modelyard_requests_total{model="churn",status="2xx"}')
                    errors = _query(url, 'modelyard_errors_total{model="churn"}')
                except httpx.HTTPError:
                    ok = None
                if ok and errors:
                    break
                time.sleep(0.5)
            else:
                targets = httpx.get(f"{url}/api/v1/targets").text
                raise AssertionError(
                    f"Prometheus never stored the server's metrics: targets {targets}, "
                    f"requests {ok}, errors {errors}"
                )
            targets = httpx.get(f"{url}/api/v1/targets").json()["data"]["activeTargets"]
            assert [t["health"] for t in targets] == ["up"], targets
            assert targets[0]["lastError"] == ""  # our exposition parsed cleanly

            assert len(ok) == 1 and ok[0]["metric"]["endpoint"] == "predict"
            assert ok[0]["metric"]["version"] == "1"
            assert float(ok[0]["value"][1]) == 7
            kinds = {e["metric"]["kind"]: float(e["value"][1]) for e in errors}
            assert kinds == {"invalid_input": 1}
            rows = _query(url, 'modelyard_batch_size_rows_sum{model="churn"}')
            assert float(rows[0]["value"][1]) == 21  # 7 requests x 3 rows
            serving = _query(url, 'modelyard_model_serving{model="churn"}')
            assert [(s["metric"]["version"], s["value"][1]) for s in serving] == [("1", "1")]
            p99 = _query(
                url,
                "histogram_quantile(0.99, sum by (le) "
                '(modelyard_request_duration_seconds_bucket{model="churn"}))',
            )
            assert 0 < float(p99[0]["value"][1]) < 10
        finally:
            proc.terminate()
            proc.wait(20)
            log.close()
