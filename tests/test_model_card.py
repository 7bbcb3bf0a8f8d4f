"""Model cards (``modelyard.registry.card`` and ``modelyard models card``) built from a
real store: a run with params, metrics, an evaluation set, a dataset input, a
feature-importance artifact and a model package, registered and approved."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import modelyard as my
from modelyard.core.errors import ResourceNotFound
from modelyard.registry.card import (
    NOT_RECORDED,
    build_card,
    card_format,
    render_html,
    render_markdown,
)
from modelyard.tracking.entities import RunInput

SIGNATURE = {
    "inputs": [{"name": "age", "dtype": "int64"}, {"name": "plan", "dtype": "object"}],
    "outputs": [{"name": "prediction", "dtype": "int64"}],
    "kind": "columns",
}
XSS = "<script>alert('owned')</script>"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelyard.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "250"},
    )


def make_package(folder: Path, signature: dict | None = SIGNATURE) -> Path:
    folder.mkdir(parents=True)
    manifest: dict = {"format_version": 1, "flavor": "sklearn"}
    if signature is not None:
        manifest["signature"] = signature
    (folder / "modelyard-model.yaml").write_text(yaml.safe_dump(manifest))
    (folder / "model.skops").write_bytes(b"weights")
    return folder


@pytest.fixture
def churn(settings_env: dict[str, str], tmp_path: Path) -> str:
    """churn v1 and v2 from one run; v2 approved, in Production, alias production."""
    my.configure()
    with my.start_run(experiment="churn-exp", run_name="train-lr") as run:
        my.log_params({"C": 0.5, "penalty": "l2"})
        my.log_metrics({"accuracy": 0.91, "f1": 0.88, "eval_accuracy": 0.89})
        my.set_tag("modelyard.eval_dataset", "churn-holdout@77aa")
        my.log_artifact(make_package(tmp_path / "build" / "model"))
        my.log_dict({"age": 0.12, "tenure": 0.55, "plan": -0.05}, "feature_importance.json")
        my.client().log_inputs(
            run.run_id,
            [
                RunInput("churn-train", "d1g3st00", "s3://data/churn/train", "train"),
                RunInput("churn-valid", "feedc0de", "s3://data/churn/valid", "validation"),
            ],
        )
    my.register_model(f"runs:/{run.run_id}/model", "churn", description="first try")
    my.register_model(f"runs:/{run.run_id}/model", "churn", description="L2, tuned C")
    my.approve("churn", 2, reason="offline eval ok")
    my.set_alias("churn", "production", 2)
    my.transition_stage("churn", 2, "Production")
    return run.run_id


def test_card_holds_every_recorded_fact(churn: str) -> None:
    reg = my.model_registry()
    card = build_card(reg, "churn", 2, purpose="Flag customers likely to leave")
    assert (card.name, card.version, card.description) == ("churn", 2, "L2, tuned C")
    assert card.params == {"C": "0.5", "penalty": "l2"}
    assert card.metrics == {"accuracy": 0.91, "f1": 0.88}
    assert card.eval_metrics == {"eval_accuracy": 0.89}
    assert card.eval_datasets == ["churn-holdout@77aa", "churn-valid@feedc0de"]
    assert [d["dataset_digest"] for d in card.training_data] == ["d1g3st00", "feedc0de"]
    assert card.feature_importance == [("tenure", 0.55), ("age", 0.12), ("plan", -0.05)]
    assert (card.stage, card.aliases, card.run_id) == ("Production", ["production"], churn)
    assert [(a["decision"], a["reason"]) for a in card.approvals] == [
        ("approved", "offline eval ok")
    ]
    assert card.limitations is None and card.notes == []
    chain = card.to_dict()["lineage_chain"]
    assert [s["kind"] for s in chain] == ["data", "run", "version", "aliases"]
    assert chain[0]["label"] == "churn-train@d1g3st00, churn-valid@feedc0de"
    assert chain[1]["label"] == f"train-lr ({churn})"
    assert chain[2]["label"] == "churn v2 [Production]"
    assert chain[3]["label"] == "production"


def test_markdown_card(churn: str) -> None:
    text = render_markdown(build_card(my.model_registry(), "churn", 2, purpose="Flag churners"))
    assert text.startswith("# Model card: churn v2\n")
    for row in (
        "| C | 0.5 |",
        "| penalty | l2 |",
        "| accuracy | 0.91 |",
        "| f1 | 0.88 |",
        "| eval_accuracy | 0.89 |",
        "| input | age | int64 |  |",
        "| input | plan | object |  |",
        "| output | prediction | int64 |  |",
        "| churn-train | d1g3st00 | train | s3://data/churn/train |",
        "| Stage | Production |",
    ):
        assert row in text, row
    assert "Evaluation set: churn-holdout@77aa, churn-valid@feedc0de" in text
    assert re.search(r"\| \S+ \| approved \| offline eval ok \| \d{4}-\d\d-\d\d ", text)
    rows = ["| tenure | 0.55 |", "| age | 0.12 |", "| plan | -0.05 |"]
    assert text.index(rows[0]) < text.index(rows[1]) < text.index(rows[2])
    assert (
        f"data: churn-train@d1g3st00, churn-valid@feedc0de → run: train-lr ({churn}) → "
        "version: churn v2 [Production] → aliases: production"
    ) in text
    assert "## Purpose\n\nFlag churners\n" in text
    assert f"## Limitations\n\n_{NOT_RECORDED}_" in text


def test_html_card_is_one_safe_file(churn: str) -> None:
    card = build_card(
        my.model_registry(), "churn", 2, purpose=f"Flag churners {XSS}", limitations="a | b\n\nc"
    )
    page = render_html(card)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<style>" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"<(script|link|img|iframe)\b", page, re.I)
    assert "@import" not in page and "url(" not in page
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in page
    assert "<p>a | b</p><p>c</p>" in page
    for text in ("d1g3st00", "offline eval ok", "prediction", "eval_accuracy", "penalty"):
        assert text in page, text
    widths = re.findall(r'class="(bar(?: neg)?)" style="width: ([\d.]+)%"', page)
    assert widths == [("bar", "100.0"), ("bar", "21.8"), ("bar neg", "9.1")]

    md = render_markdown(card)
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "a \\| b<br><br>c" in md


def test_missing_pieces_render_as_not_recorded(settings_env: dict[str, str], tmp_path) -> None:
    my.configure()
    folder = make_package(tmp_path / "exported", signature=None)
    my.register_model(str(folder), "fraud")
    card = build_card(my.model_registry(), "fraud", 1)
    assert card.run is None and card.params == {} and card.feature_importance == []
    text = render_markdown(card)
    for section in (
        "Purpose",
        "Limitations",
        "Training data",
        "Parameters",
        "Metrics",
        "Evaluation",
        "Signature",
        "Feature importance",
        "Approvals",
    ):
        assert f"## {section}\n\n_{NOT_RECORDED}_\n" in text, section
    assert f"_Description: {NOT_RECORDED}._" in text
    assert f"run: {NOT_RECORDED} (registered from {folder})" in text
    assert f"data: {NOT_RECORDED}" in text and "aliases: none" in text
    page = render_html(card)
    assert page.count(f'<p class="missing">{NOT_RECORDED}</p>') == 9


def test_unreadable_feature_importance_is_a_note(
    settings_env: dict[str, str], tmp_path: Path
) -> None:
    my.configure()
    with my.start_run(experiment="x") as run:
        my.log_artifact(make_package(tmp_path / "b" / "model"))
        my.log_text("{not json", "feature_importance.json")
        my.log_dict(
            {"age": 0.3, "bad": "high", "nan": float("nan")}, "model/feature_importance.json"
        )
    my.register_model(f"runs:/{run.run_id}/model", "m")
    card = build_card(my.model_registry(), "m", 1)
    assert card.feature_importance == [("age", 0.3)]  # the package's file, numbers only
    assert len(card.notes) == 1 and "feature_importance.json is not JSON" in card.notes[0]
    assert "## Notes" in render_markdown(card)


def test_purpose_and_limitations_default_to_model_tags(churn: str) -> None:
    reg = my.model_registry()
    reg.set_registered_model_tag("churn", "card.purpose", "Retention campaigns")
    reg.set_registered_model_tag("churn", "card.limitations", "Not for B2B accounts")
    card = build_card(reg, "churn", 1)
    assert (card.purpose, card.limitations) == ("Retention campaigns", "Not for B2B accounts")
    assert (card.description, card.stage, card.aliases, card.approvals) == (
        "first try",
        "None",
        [],
        [],
    )
    assert build_card(reg, "churn", 1, purpose="Override").purpose == "Override"
    with pytest.raises(ResourceNotFound):
        build_card(reg, "churn", 5)


def test_card_command_writes_markdown_and_html(churn: str, tmp_path: Path) -> None:
    proc = cli("models", "card", "churn", "--version", "2", "--purpose", "Flag churners")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# Model card: churn v2") and "| C | 0.5 |" in proc.stdout

    html_out = tmp_path / "card.html"
    proc = cli("models", "card", "churn", "-v", "2", "--out", str(html_out), "--purpose", XSS)
    assert proc.returncode == 0, proc.stderr
    assert f"to {html_out}" in proc.stdout
    page = html_out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "&lt;script&gt;" in page

    md_out = tmp_path / "card.md"
    proc = cli("models", "card", "churn", "-v", "1", "-o", str(md_out), "--limitations", "Small")
    assert proc.returncode == 0, proc.stderr
    text = md_out.read_text()
    assert "# Model card: churn v1" in text and "## Limitations\n\nSmall\n" in text

    doc = json.loads(cli("models", "card", "churn", "-v", "2", "--json").stdout)
    assert doc["params"] == {"C": "0.5", "penalty": "l2"}
    assert doc["feature_importance"][0] == {"feature": "tenure", "importance": 0.55}

    for args, message in (
        (("-v", "2", "--out", str(tmp_path / "card.pdf")), "name the file *.md or *.html"),
        (("-v", "9"), "9"),
        (("-v", "2", "--out", str(tmp_path / "no" / "such" / "card.md")), "Cannot write"),
    ):
        proc = cli("models", "card", "churn", *args)
        assert proc.returncode == 1, proc.stdout
        assert proc.stderr.startswith("error: ") and message in proc.stderr
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "card.pdf").exists()


def test_card_format_from_extension() -> None:
    assert card_format("out/Card.HTML") == "html"
    assert card_format("card.htm") == "html"
    assert card_format("card.md") == "markdown"
    assert card_format("card.markdown") == "markdown"
