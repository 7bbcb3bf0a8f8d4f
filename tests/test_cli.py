"""The ``modelyard`` command line, run for real (``python -m modelyard.cli.main``)
against a store the SDK filled in the same test.

Tables are read as text (rich, 250 columns wide so cells stay whole); ``--json``
output is parsed and checked value by value; failures must exit 1 with
``error: <message>`` on stderr and never a traceback.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import modelyard as my
from infra.ports import free_port
from modelyard.cli import Services
from modelyard.cli.main import app

UNKNOWN_RUN = "0123456789abcdef0123456789abcdef"


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``modelyard <args>`` in a subprocess with this test's MODELYARD_* settings."""
    return subprocess.run(
        [sys.executable, "-m", "modelyard.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "250"},
    )


def ok(*args: str) -> str:
    proc = cli(*args)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


def ok_json(*args: str) -> dict:
    return json.loads(ok(*args, "--json"))


def failed(*args: str) -> str:
    """Assert ``modelyard <args>`` fails cleanly; return its stderr."""
    proc = cli(*args)
    assert proc.returncode == 1, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.stderr.startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stdout == ""
    return proc.stderr


@pytest.fixture
def runs(settings_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Experiment ``cli-exp`` with runs alpha, beta, gamma and ``other`` with delta;
    returns run name -> run id."""
    my.configure()  # the settings_env variables: where the CLI subprocesses read
    notes = tmp_path / "readme.txt"
    notes.write_text("what this run is about\n")
    specs = [
        ("cli-exp", "alpha", {"C": 0.1, "model": "lr"}, [0.8, 0.9, 0.95], "vision"),
        ("cli-exp", "beta", {"C": 1.0, "model": "lr"}, [0.7, 0.85], "vision"),
        ("cli-exp", "gamma", {"C": 0.1, "model": "rf"}, [0.91], "nlp"),
        ("other", "delta", {"C": 5.0, "model": "lr"}, [0.99], "vision"),
    ]
    ids = {}
    for experiment, name, params, accs, team in specs:
        with my.start_run(experiment=experiment, run_name=name, tags={"team": team}) as run:
            my.log_params(params)
            for step, acc in enumerate(accs):
                my.log_metrics({"acc": acc, "loss": 1 - acc}, step=step)
            if name == "alpha":
                my.log_artifact(notes, "notes")
                my.log_dict({"C": 0.1}, "config.json")
        ids[name] = run.run_id
    my.flush()
    return ids


# -- experiments ------------------------------------------------------------------------


def test_experiments_list_as_table_and_json_by_lifecycle(runs: dict[str, str]) -> None:
    table = ok("experiments", "list")
    assert "cli-exp" in table and "other" in table and "Default" in table

    listed = ok_json("experiments", "list")["experiments"]
    assert [e["name"] for e in listed] == ["Default", "cli-exp", "other"]
    assert all(e["lifecycle_stage"] == "active" for e in listed)

    other = next(e for e in listed if e["name"] == "other")
    my.client().delete_experiment(other["experiment_id"])
    assert [e["name"] for e in ok_json("experiments", "list")["experiments"]] == [
        "Default",
        "cli-exp",
    ]
    deleted = ok_json("experiments", "list", "--view", "deleted")["experiments"]
    assert [(e["name"], e["lifecycle_stage"]) for e in deleted] == [("other", "deleted")]
    assert len(ok_json("experiments", "list", "--view", "all")["experiments"]) == 3
    assert "other" in ok("experiments", "list", "--view", "deleted")


# -- runs list --------------------------------------------------------------------------


def test_runs_list_table_shows_every_run_with_its_metrics(runs: dict[str, str]) -> None:
    out = ok("runs", "list", "--experiment", "cli-exp")
    for name in ("alpha", "beta", "gamma"):
        assert name in out
        assert runs[name][:8] in out
        assert runs[name] not in out  # ids are shortened unless --full-ids
    assert "delta" not in out
    assert out.count("FINISHED") == 3
    header = next(line for line in out.splitlines() if "run id" in line)
    for column in ("name", "status", "start", "duration", "acc", "loss", "C", "model"):
        assert column in header
    alpha_row = next(line for line in out.splitlines() if "alpha" in line)
    assert "0.95" in alpha_row and "0.05" in alpha_row and "lr" in alpha_row

    full = ok("runs", "list", "-e", "cli-exp", "--full-ids")
    assert all(runs[n] in full for n in ("alpha", "beta", "gamma"))


def test_runs_list_json_has_latest_metrics_params_and_tags(runs: dict[str, str]) -> None:
    listed = ok_json("runs", "list", "--experiment", "cli-exp")["runs"]
    by_name = {r["run_name"]: r for r in listed}
    assert set(by_name) == {"alpha", "beta", "gamma"}
    alpha = by_name["alpha"]
    assert alpha["run_id"] == runs["alpha"]
    assert alpha["status"] == "FINISHED"
    assert alpha["metrics"] == {"acc": 0.95, "loss": pytest.approx(0.05)}
    assert alpha["params"] == {"C": "0.1", "model": "lr"}
    assert alpha["tags"]["team"] == "vision"
    assert alpha["end_time"] >= alpha["start_time"]
    assert alpha["duration_s"] == (alpha["end_time"] - alpha["start_time"]) / 1000
    # newest first by default
    assert [r["run_name"] for r in listed] == ["gamma", "beta", "alpha"]


def test_runs_list_filter_order_max_results_and_experiments(runs: dict[str, str]) -> None:
    matched = ok_json(
        "runs",
        "list",
        "-e",
        "cli-exp",
        "--filter",
        "metrics.acc > 0.93 or params.model = 'rf'",
        "--order-by",
        "metrics.acc DESC",
    )["runs"]
    assert [r["run_name"] for r in matched] == ["alpha", "gamma"]

    table = ok("runs", "list", "-e", "cli-exp", "-f", "tags.team = 'nlp'")
    assert "gamma" in table and "alpha" not in table and "beta" not in table

    ascending = ok_json("runs", "list", "-e", "cli-exp", "-o", "metrics.acc ASC", "-n", "2")
    assert [r["run_name"] for r in ascending["runs"]] == ["beta", "gamma"]

    both = ok_json("runs", "list", "-e", "cli-exp", "-e", "other")["runs"]
    assert {r["run_name"] for r in both} == {"alpha", "beta", "gamma", "delta"}
    # by id too, and every active experiment when none is named
    other_id = my.client().get_experiment_by_name("other").experiment_id
    assert [r["run_name"] for r in ok_json("runs", "list", "-e", other_id)["runs"]] == ["delta"]
    assert len(ok_json("runs", "list")["runs"]) == 4

    assert "No runs match." in ok("runs", "list", "-f", "metrics.acc > 2")


def test_runs_list_columns_option_picks_the_columns(runs: dict[str, str]) -> None:
    out = ok("runs", "list", "-e", "cli-exp", "--columns", "params.C,tags.team")
    header = next(line for line in out.splitlines() if "run id" in line)
    assert "C" in header.split() and "team" in header.split()
    assert "acc" not in header and "model" not in header
    assert "vision" in out and "nlp" in out
    assert "0.95" not in out

    proc = cli("runs", "list", "--columns", "acc")
    assert proc.returncode == 2
    assert "metrics.<key>" in proc.stderr


# -- runs show --------------------------------------------------------------------------


def test_runs_show_table_lists_params_metrics_tags_and_artifacts(runs: dict[str, str]) -> None:
    out = ok("runs", "show", runs["alpha"])
    assert runs["alpha"] in out
    assert "cli-exp" in out and "FINISHED" in out
    for text in ("Params", "Metrics", "Tags", "Artifacts", "model", "team", "vision"):
        assert text in out
    assert "notes/readme.txt" in out and "config.json" in out
    acc_row = next(line for line in out.splitlines() if "│ acc " in line)
    assert "0.95" in acc_row and "│    2 │" in acc_row  # latest value, at step 2
    assert "mlflow.user" not in out
    assert "system tags hidden" in out

    everything = ok("runs", "show", runs["alpha"], "--all-tags")
    assert "mlflow.user" in everything and "system tags hidden" not in everything


def test_runs_show_json(runs: dict[str, str]) -> None:
    shown = ok_json("runs", "show", runs["alpha"])
    assert shown["run_id"] == runs["alpha"]
    assert shown["experiment_name"] == "cli-exp"
    assert shown["params"] == {"C": "0.1", "model": "lr"}
    assert shown["metrics"]["acc"] == 0.95
    assert shown["tags"] == {"team": "vision"}
    assert [a["path"] for a in shown["artifacts"]] == ["config.json", "notes/readme.txt"]
    readme = shown["artifacts"][1]
    assert readme["file_size"] == len("what this run is about\n")
    assert shown["artifacts_truncated"] is False

    tags = ok_json("runs", "show", runs["alpha"], "--all-tags")["tags"]
    assert tags["team"] == "vision" and tags["mlflow.runName"] == "alpha"


# -- runs compare -----------------------------------------------------------------------


def test_runs_compare_all_rows_and_differences_only(runs: dict[str, str]) -> None:
    alpha, gamma = runs["alpha"], runs["gamma"]
    full = ok_json("runs", "compare", alpha, gamma)
    assert full["columns"] == [f"alpha ({alpha[:8]})", f"gamma ({gamma[:8]})"]
    rows = full["rows"]
    assert rows["params.C"] == {full["columns"][0]: "0.1", full["columns"][1]: "0.1"}
    assert list(rows["metrics.acc"].values()) == [0.95, 0.91]
    assert list(rows["params.model"].values()) == ["lr", "rf"]
    assert "attributes.status" in rows

    diff = ok_json("runs", "compare", alpha, gamma, "--diff-only")["rows"]
    assert "params.C" not in diff and "attributes.status" not in diff
    assert {"params.model", "metrics.acc", "tags.team"} <= set(diff)

    table = ok("runs", "compare", alpha, gamma, "--diff-only")
    assert "params.model" in table and "metrics.acc" in table
    assert "params.C" not in table and "attributes.status" not in table
    assert "alpha" in table and "gamma" in table

    all_rows = ok("runs", "compare", alpha, gamma)
    assert "params.C" in all_rows and "attributes.status" in all_rows

    proc = cli("runs", "compare", alpha, alpha)
    assert proc.returncode == 2 and "at least two different run ids" in proc.stderr


# -- failures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("runs", "show", UNKNOWN_RUN),
        ("runs", "show", UNKNOWN_RUN, "--json"),
        ("runs", "compare", "ALPHA", UNKNOWN_RUN),
        ("runs", "compare", "ALPHA", UNKNOWN_RUN, "--json"),
    ],
)
def test_unknown_run_id_is_a_clear_error(runs: dict[str, str], args: tuple[str, ...]) -> None:
    args = tuple(runs["alpha"] if a == "ALPHA" else a for a in args)
    err = failed(*args)
    assert f"Run '{UNKNOWN_RUN}' not found" in err


def test_bad_input_is_a_clear_error_without_traceback(runs: dict[str, str]) -> None:
    assert "Invalid run id 'nope'" in failed("runs", "show", "nope")
    assert "No experiment named 'nosuch'" in failed("runs", "list", "-e", "nosuch")
    err = failed("runs", "list", "-f", "metrics.acc >")
    assert "Invalid filter" in err and "expected a number" in err


def test_in_process_with_injected_service(runs: dict[str, str]) -> None:
    """The app takes its services from the click context object (no subprocess)."""
    runner = CliRunner()
    obj = Services(tracking=my.client)
    result = runner.invoke(app, ["runs", "show", runs["beta"], "--json"], obj=obj)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["acc"] == 0.85

    result = runner.invoke(app, ["runs", "show", UNKNOWN_RUN], obj=obj)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: Run '{UNKNOWN_RUN}' not found")
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_help_and_version_load_no_store_or_data_library() -> None:
    code = (
        "import sys\n"
        "from modelyard.cli.main import main\n"
        "sys.argv = ['modelyard', 'runs', 'list', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "heavy = {'pandas', 'sqlalchemy', 'sklearn', 'pydantic_settings', 'uvicorn'}\n"
        "print('LOADED', sorted(heavy & set(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "--filter" in proc.stdout and "--order-by" in proc.stdout
    assert "LOADED []" in proc.stdout

    from modelyard import __version__

    assert ok("--version").strip() == f"modelyard {__version__}"


# -- server -----------------------------------------------------------------------------


def _occupied(host: str) -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind((host, 0))
    sock.listen()
    return sock, sock.getsockname()[1]


def test_server_on_a_taken_port_fails_cleanly_and_warns_off_loopback(
    settings_env: dict[str, str],
) -> None:
    sock, port = _occupied("127.0.0.1")
    with sock:
        proc = cli("server", "--port", str(port))
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use; "
        "pick another --port or --host"
    )
    assert "warning" not in proc.stderr and "Traceback" not in proc.stderr

    sock, port = _occupied("0.0.0.0")
    with sock:
        proc = cli("server", "--host", "0.0.0.0", "--port", str(port))
    assert proc.returncode == 1
    assert proc.stderr.startswith("warning: binding 0.0.0.0: the server has no authentication")
    assert f"error: cannot listen on 0.0.0.0:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_server_command_serves_the_store(runs: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelyard.cli.main", "server", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert httpx.get(f"{base}/docs", timeout=5).status_code == 200
        got = httpx.get(
            f"{base}/api/2.0/mlflow/runs/get", params={"run_id": runs["alpha"]}, timeout=5
        )
        assert got.status_code == 200, got.text
        assert got.json()["run"]["info"]["run_name"] == "alpha"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    banner = log.read_text()
    assert f"modelyard server on http://127.0.0.1:{port}" in banner
    assert f"MLFLOW_TRACKING_URI=http://127.0.0.1:{port}" in banner
    assert "warning" not in banner
