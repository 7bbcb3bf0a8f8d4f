"""Model cards: what a registered model version is, where it came from, how good it
is and who let it through — as Markdown or one self-contained HTML page.

`build_card` gathers the facts from the registry (the version and its snapshots,
aliases, approvals) and from tracking (the source run's params and tags, a
``feature_importance.json`` artifact); `render_markdown` and `render_html` turn
the card into text. A fact that was never recorded shows as "not recorded": a card
can always be written.

Example::

    card = build_card(registry, "churn", 7, purpose="Flag customers likely to leave")
    Path("card.html").write_text(render_html(card))
"""

from __future__ import annotations

import html
import json
import math
import posixpath
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modelyard.core.errors import InvalidParameter, ModelyardError

if TYPE_CHECKING:  # pragma: no cover
    from modelyard.registry.service import RegistryService
    from modelyard.tracking.entities import Run

__all__ = [
    "EVAL_CONTEXTS",
    "EVAL_DATASET_TAG",
    "EVAL_METRIC_PREFIX",
    "FEATURE_IMPORTANCE_FILE",
    "LIMITATIONS_TAG",
    "NOT_RECORDED",
    "PURPOSE_TAG",
    "ModelCard",
    "build_card",
    "card_format",
    "render_card",
    "render_html",
    "render_markdown",
]

NOT_RECORDED = "not recorded"
PURPOSE_TAG = "card.purpose"
LIMITATIONS_TAG = "card.limitations"
EVAL_DATASET_TAG = "modelyard.eval_dataset"
EVAL_METRIC_PREFIX = "eval_"
# Dataset contexts (the role a run gave an input) that mean "evaluated on this".
EVAL_CONTEXTS = ("eval", "evaluation", "test", "validation")
FEATURE_IMPORTANCE_FILE = "feature_importance.json"
_FORMATS = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}


@dataclass(slots=True)
class ModelCard:
    """The facts of one model version, ready to render.

    Every optional field is ``None`` (or empty) when it was not recorded; the
    renderers print "not recorded" for it.
    """

    name: str
    version: int
    description: str | None
    purpose: str | None
    limitations: str | None
    flavor: str | None
    source: str
    artifact_uri: str
    created_at: int
    created_by: str
    stage: str
    aliases: list[str]
    run_id: str | None
    run: dict[str, Any] | None  # run_id, run_name, experiment_id, status, start_time
    params: dict[str, str]
    metrics: dict[str, float]  # the version's snapshot, without eval_ metrics
    eval_metrics: dict[str, float]  # the snapshot's eval_ metrics
    eval_datasets: list[str]
    training_data: list[dict[str, Any]]  # the version's lineage snapshot
    signature: dict[str, Any] | None
    feature_importance: list[tuple[str, float]]  # most important first
    approvals: list[dict[str, Any]]  # actor, decision, reason, created_at
    generated_at: int
    notes: list[str] = field(default_factory=list)  # what could not be read, and why

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["feature_importance"] = [
            {"feature": f, "importance": v} for f, v in self.feature_importance
        ]
        doc["lineage_chain"] = lineage_chain(self)
        return doc


# -- building ------------------------------------------------------------------------
def build_card(
    registry: RegistryService,
    name: str,
    version: int | str,
    *,
    purpose: str | None = None,
    limitations: str | None = None,
) -> ModelCard:
    """The card of version ``version`` of ``name``.

    - ``purpose``, ``limitations``: what the model is for and where it must not be
      trusted; default: the registered model's tags ``card.purpose`` and
      ``card.limitations``.

    Raises `ResourceNotFound` for a model or version that does not exist; anything
    else missing (the run was deleted, no signature, no feature importance) is left
    out of the card, not an error.
    """
    model = registry.get_registered_model(name)
    mv = registry.get_model_version(name, version)
    notes: list[str] = []

    run: Run | None = None
    if mv.run_id:
        try:
            run = registry.tracking.get_run(mv.run_id)
        except ModelyardError as exc:
            notes.append(f"source run {mv.run_id}: {exc.message}")

    params = dict(sorted(run.data.params.items())) if run is not None else {}
    metrics = {k: v for k, v in sorted(mv.metrics.items()) if not k.startswith(EVAL_METRIC_PREFIX)}
    eval_metrics = {k: v for k, v in sorted(mv.metrics.items()) if k.startswith(EVAL_METRIC_PREFIX)}
    eval_datasets = []
    if run is not None and run.data.tags.get(EVAL_DATASET_TAG):
        eval_datasets.append(run.data.tags[EVAL_DATASET_TAG])
    for item in mv.lineage:
        if str(item.get("context") or "").lower() in EVAL_CONTEXTS:
            label = _dataset_label(item)
            if label not in eval_datasets:
                eval_datasets.append(label)

    return ModelCard(
        name=mv.name,
        version=mv.version,
        description=mv.description or model.description,
        purpose=purpose or model.tags.get(PURPOSE_TAG) or None,
        limitations=limitations or model.tags.get(LIMITATIONS_TAG) or None,
        flavor=mv.flavor,
        source=mv.source,
        artifact_uri=mv.artifact_uri,
        created_at=mv.created_at,
        created_by=mv.user_id,
        stage=mv.stage,
        aliases=list(mv.aliases),
        run_id=mv.run_id,
        run=None
        if run is None
        else {
            "run_id": run.info.run_id,
            "run_name": run.info.run_name,
            "experiment_id": run.info.experiment_id,
            "status": run.info.status,
            "start_time": run.info.start_time,
        },
        params=params,
        metrics=metrics,
        eval_metrics=eval_metrics,
        eval_datasets=eval_datasets,
        training_data=[dict(item) for item in mv.lineage],
        signature=mv.signature or None,
        feature_importance=_feature_importance(registry, mv.run_id, mv.source, notes)
        if run is not None
        else [],
        approvals=[
            {
                "actor": a.actor,
                "decision": a.decision,
                "reason": a.reason,
                "created_at": a.created_at,
            }
            for a in registry.approvals(name, mv.version)
        ],
        generated_at=int(datetime.now(UTC).timestamp() * 1000),
        notes=notes,
    )


def _feature_importance(
    registry: RegistryService, run_id: str | None, source: str, notes: list[str]
) -> list[tuple[str, float]]:
    """``feature_importance.json`` ({feature: importance}) at the run's artifact root,
    else beside the model package; most important first."""
    if not run_id:
        return []
    candidates = [FEATURE_IMPORTANCE_FILE]
    if source.startswith("runs:/"):
        package = source[len("runs:/") :].strip("/").partition("/")[2]
        if package:
            candidates.append(posixpath.join(package, FEATURE_IMPORTANCE_FILE))
    for path in candidates:
        try:
            raw = registry.tracking.read_artifact(run_id, path)
        except ModelyardError as exc:
            if exc.code != "RESOURCE_DOES_NOT_EXIST":
                notes.append(f"{path}: {exc.message}")
            continue
        except OSError as exc:
            notes.append(f"{path}: {exc}")
            continue
        try:
            data = json.loads(raw)
        except ValueError as exc:
            notes.append(f"{path} is not JSON: {exc}")
            continue
        if not isinstance(data, dict):
            notes.append(f"{path} is not an object of feature -> importance")
            continue
        pairs = []
        for feature, value in data.items():
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if number and math.isfinite(value):
                pairs.append((str(feature), float(value)))
        return sorted(pairs, key=lambda p: (-abs(p[1]), p[0]))
    return []


def _dataset_label(item: dict[str, Any]) -> str:
    name = item.get("dataset_name") or "?"
    digest = item.get("dataset_digest")
    return f"{name}@{digest}" if digest else str(name)


def lineage_chain(card: ModelCard) -> list[dict[str, str]]:
    """data -> run -> version -> aliases, as ``[{"kind", "label"}]`` steps."""
    data = ", ".join(_dataset_label(d) for d in card.training_data) or NOT_RECORDED
    if card.run is not None:
        run = f"{card.run['run_name']} ({card.run['run_id']})"
    elif card.run_id:
        run = f"{card.run_id} (no longer available)"
    else:
        run = f"{NOT_RECORDED} (registered from {card.source})"
    version = f"{card.name} v{card.version}"
    if card.stage and card.stage != "None":
        version += f" [{card.stage}]"
    aliases = ", ".join(card.aliases) or "none"
    return [
        {"kind": "data", "label": data},
        {"kind": "run", "label": run},
        {"kind": "version", "label": version},
        {"kind": "aliases", "label": aliases},
    ]


# -- shared formatting ----------------------------------------------------------------
def card_format(path: str) -> str:
    """``markdown`` or ``html``, from the file name's extension."""
    ext = posixpath.splitext(path.lower())[1]
    fmt = _FORMATS.get(ext)
    if fmt is None:
        raise InvalidParameter(
            f"Cannot tell the card format from {path!r}: name the file *.md or *.html"
        )
    return fmt


def render_card(card: ModelCard, fmt: str) -> str:
    """The card as ``markdown`` or ``html``."""
    return render_html(card) if fmt == "html" else render_markdown(card)


def _time(ms: int | None) -> str:
    if not ms:
        return NOT_RECORDED
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(value: Any) -> str:
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def _signature_rows(signature: dict[str, Any] | None) -> list[list[str]]:
    """role, name, dtype, shape per input/output of a manifest signature."""
    rows = []
    for role, key in (("input", "inputs"), ("output", "outputs")):
        specs = (signature or {}).get(key) or []
        if not isinstance(specs, list):
            specs = [specs]
        for spec in specs:
            if isinstance(spec, dict):
                shape = spec.get("shape")
                rows.append(
                    [
                        role,
                        str(spec.get("name", "")),
                        str(spec.get("dtype", spec.get("type", ""))),
                        "" if shape is None else str(shape),
                    ]
                )
            else:
                rows.append([role, str(spec), "", ""])
    return rows


def _approval_rows(card: ModelCard) -> list[list[str]]:
    return [
        [a["actor"], a["decision"], a["reason"] or "", _time(a["created_at"])]
        for a in card.approvals
    ]


def _data_rows(items: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            str(d.get("dataset_name") or ""),
            str(d.get("dataset_digest") or ""),
            str(d.get("context") or ""),
            str(d.get("dataset_uri") or ""),
        ]
        for d in items
    ]


def _overview(card: ModelCard) -> list[tuple[str, str]]:
    run = card.run_id or NOT_RECORDED
    if card.run is not None:
        info = card.run
        run = f"{info['run_name']} ({info['run_id']}, experiment {info['experiment_id']})"
    return [
        ("Model", card.name),
        ("Version", str(card.version)),
        ("Stage", card.stage or "None"),
        ("Aliases", ", ".join(card.aliases) or "none"),
        ("Flavor", card.flavor or NOT_RECORDED),
        ("Registered", f"{_time(card.created_at)} by {card.created_by or 'unknown'}"),
        ("Source", card.source),
        ("Source run", run),
    ]


# -- Markdown -------------------------------------------------------------------------
def _md(text: Any) -> str:
    """Text for Markdown: HTML-escaped (Markdown passes raw HTML through) and with the
    characters that would break a table cell or a line neutralised."""
    s = html.escape(str(text), quote=False)
    return s.replace("|", "\\|").replace("\r\n", "\n").replace("\n", "<br>")


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _md_block(title: str, body: list[str]) -> list[str]:
    return [f"## {title}", "", *(body or [f"_{NOT_RECORDED}_", ""])]


def render_markdown(card: ModelCard) -> str:
    """The card as a Markdown document (GitHub-flavoured tables)."""
    out = [f"# Model card: {_md(card.name)} v{card.version}", ""]
    out += [_md(card.description) if card.description else f"_Description: {NOT_RECORDED}._"]
    out += [""]
    out += _md_table(["field", "value"], [[k, v] for k, v in _overview(card)])
    out += _md_block("Purpose", [_md(card.purpose), ""] if card.purpose else [])
    out += _md_block("Limitations", [_md(card.limitations), ""] if card.limitations else [])
    out += _md_block(
        "Training data",
        _md_table(["dataset", "digest", "context", "uri"], _data_rows(card.training_data))
        if card.training_data
        else [],
    )
    out += _md_block(
        "Parameters",
        _md_table(["param", "value"], [[k, v] for k, v in card.params.items()])
        if card.params
        else [],
    )
    out += _md_block(
        "Metrics",
        _md_table(["metric", "value"], [[k, _num(v)] for k, v in card.metrics.items()])
        if card.metrics
        else [],
    )
    evaluation = []
    if card.eval_datasets or card.eval_metrics:
        datasets = ", ".join(card.eval_datasets) or NOT_RECORDED
        evaluation = [f"Evaluation set: {_md(datasets)}", ""]
        if card.eval_metrics:
            evaluation += _md_table(
                ["metric", "value"], [[k, _num(v)] for k, v in card.eval_metrics.items()]
            )
    out += _md_block("Evaluation", evaluation)
    signature = []
    if card.signature:
        kind = card.signature.get("kind")
        signature = [f"Kind: {_md(kind)}", ""] if kind else []
        signature += _md_table(["role", "name", "dtype", "shape"], _signature_rows(card.signature))
    out += _md_block("Signature", signature)
    out += _md_block(
        "Feature importance",
        _md_table(["feature", "importance"], [[f, _num(v)] for f, v in card.feature_importance])
        if card.feature_importance
        else [],
    )
    chain = " → ".join(f"{step['kind']}: {_md(step['label'])}" for step in lineage_chain(card))
    out += _md_block("Lineage", [chain, ""])
    out += _md_block(
        "Approvals",
        _md_table(["who", "decision", "why", "when"], _approval_rows(card))
        if card.approvals
        else [],
    )
    if card.notes:
        out += _md_block("Notes", [f"- {_md(n)}" for n in card.notes] + [""])
    out += [f"_Generated by modelyard on {_time(card.generated_at)}._", ""]
    return "\n".join(out)


# -- HTML -----------------------------------------------------------------------------
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
  max-width: 60rem; padding: 0 1rem; color: #1f2328; line-height: 1.45; }
h1 { border-bottom: 1px solid #d0d7de; padding-bottom: .3rem; }
h2 { margin-top: 2rem; font-size: 1.25rem; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #d0d7de; padding: .3rem .7rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.missing { color: #6e7781; font-style: italic; }
.chain { display: flex; flex-wrap: wrap; align-items: center; gap: .4rem; }
.step { border: 1px solid #d0d7de; border-radius: 6px; padding: .3rem .6rem; background: #f6f8fa; }
.step b { display: block; font-size: .75rem; text-transform: uppercase; color: #57606a; }
.arrow { color: #57606a; }
.bar { background: #0969da; height: .8rem; border-radius: 2px; min-width: 1px; }
.bar.neg { background: #cf222e; }
td.barcell { width: 20rem; }
.approved { color: #1a7f37; font-weight: 600; }
.rejected { color: #cf222e; font-weight: 600; }
footer { margin-top: 2rem; color: #6e7781; font-size: .85rem; }
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _h_missing(label: str = "") -> str:
    return f'<p class="missing">{_e(label)}{NOT_RECORDED}</p>'


def _h_text(text: str | None, label: str = "") -> str:
    if not text:
        return _h_missing(label)
    return "".join(f"<p>{_e(p)}</p>" for p in text.replace("\r\n", "\n").split("\n\n"))


def _h_table(header: list[str], rows: list[list[str]], numeric: tuple[int, ...] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{_e(c)}</td>' if i in numeric else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _h_section(title: str, body: str) -> str:
    return f"<section><h2>{_e(title)}</h2>{body or _h_missing()}</section>"


def _h_importance(pairs: list[tuple[str, float]]) -> str:
    if not pairs:
        return ""
    top = max(abs(v) for _, v in pairs) or 1.0
    rows = []
    for feature, value in pairs:
        width = round(abs(value) / top * 100, 1)
        cls = "bar neg" if value < 0 else "bar"
        rows.append(
            f'<tr><td>{_e(feature)}</td><td class="num">{_e(_num(value))}</td>'
            f'<td class="barcell"><div class="{cls}" style="width: {width}%"></div></td></tr>'
        )
    return (
        "<table><thead><tr><th>feature</th><th>importance</th><th></th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def render_html(card: ModelCard) -> str:
    """The card as one HTML page: inline CSS, no scripts, nothing fetched from elsewhere."""
    title = f"Model card: {card.name} v{card.version}"
    parts = [f"<h1>{_e(title)}</h1>", _h_text(card.description, "Description: ")]
    parts.append(
        "<table>"
        + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in _overview(card))
        + "</table>"
    )
    parts.append(_h_section("Purpose", _h_text(card.purpose)))
    parts.append(_h_section("Limitations", _h_text(card.limitations)))
    parts.append(
        _h_section(
            "Training data",
            _h_table(["dataset", "digest", "context", "uri"], _data_rows(card.training_data))
            if card.training_data
            else "",
        )
    )
    parts.append(
        _h_section(
            "Parameters",
            _h_table(["param", "value"], [[k, v] for k, v in card.params.items()])
            if card.params
            else "",
        )
    )
    parts.append(
        _h_section(
            "Metrics",
            _h_table(["metric", "value"], [[k, _num(v)] for k, v in card.metrics.items()], (1,))
            if card.metrics
            else "",
        )
    )
    evaluation = ""
    if card.eval_datasets or card.eval_metrics:
        datasets = ", ".join(card.eval_datasets) or NOT_RECORDED
        evaluation = f"<p>Evaluation set: {_e(datasets)}</p>"
        if card.eval_metrics:
            evaluation += _h_table(
                ["metric", "value"], [[k, _num(v)] for k, v in card.eval_metrics.items()], (1,)
            )
    parts.append(_h_section("Evaluation", evaluation))
    signature = ""
    if card.signature:
        kind = card.signature.get("kind")
        signature = f"<p>Kind: {_e(kind)}</p>" if kind else ""
        signature += _h_table(["role", "name", "dtype", "shape"], _signature_rows(card.signature))
    parts.append(_h_section("Signature", signature))
    parts.append(_h_section("Feature importance", _h_importance(card.feature_importance)))
    steps = '<span class="arrow">→</span>'.join(
        f'<div class="step"><b>{_e(s["kind"])}</b>{_e(s["label"])}</div>'
        for s in lineage_chain(card)
    )
    parts.append(_h_section("Lineage", f'<div class="chain">{steps}</div>'))
    approvals = ""
    if card.approvals:
        rows = "".join(
            f"<tr><td>{_e(a['actor'])}</td>"
            f'<td class="{_e(a["decision"])}">{_e(a["decision"])}</td>'
            f"<td>{_e(a['reason'] or '')}</td><td>{_e(_time(a['created_at']))}</td></tr>"
            for a in card.approvals
        )
        approvals = (
            "<table><thead><tr><th>who</th><th>decision</th><th>why</th><th>when</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>"
        )
    parts.append(_h_section("Approvals", approvals))
    if card.notes:
        notes = "".join(f"<li>{_e(n)}</li>" for n in card.notes)
        parts.append(_h_section("Notes", f"<ul>{notes}</ul>"))
    parts.append(f"<footer>Generated by modelyard on {_e(_time(card.generated_at))}.</footer>")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{''.join(parts)}\n</body>\n</html>\n"
    )
