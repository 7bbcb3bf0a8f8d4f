"""The tracking quickstart: what ``modelyard demo`` (and ``make demo``) runs.

Four scikit-learn classifiers learn the breast-cancer dataset that scikit-learn
ships (no download), each in its own run of the experiment ``quickstart``, through
the public SDK only (``import modelyard as my``):

- params (the model's hyper-parameters and the data split) and tags (model family);
- a metric series per training step — epochs of SGD, trees of a random forest,
  stages of gradient boosting: ``train_loss``, ``val_loss``, ``val_accuracy``;
- final metrics on the validation set: ``accuracy``, ``f1``, ``roc_auc``, ``log_loss``;
- artifacts: a confusion-matrix PNG, the feature list as JSON, a text summary.

Then it asks the store for the runs, best first (``my.search_runs(order_by=...)``),
prints them as a table and names the commands that look further. Nothing is pickled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

import modelyard as my
from modelyard.core.errors import InvalidState

__all__ = ["EXPERIMENT", "run_quickstart"]

EXPERIMENT = "quickstart"
SEED = 42
VAL_SIZE = 0.25
SGD_EPOCHS = 30

# on_step(step, train class-1 probabilities, validation class-1 probabilities)
StepCallback = Callable[[int, Any, Any], None]


@dataclass
class _Data:
    x_train: Any
    x_val: Any
    y_train: Any
    y_val: Any
    features: list[str]
    target_names: list[str]


@dataclass
class _Candidate:
    """One model to train: its run name, family tag, params, and a training loop that
    reports each step's predicted probabilities and returns the fitted estimator."""

    name: str
    family: str
    params: dict[str, Any]
    steps: int
    train: Callable[[_Data, StepCallback], Any]


def _require_sklearn() -> None:
    try:
        import matplotlib  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise InvalidState(
            f"The demo needs scikit-learn and matplotlib ({exc.name} is missing): "
            "pip install 'modelyard[sklearn]'"
        ) from None


def _load_data() -> _Data:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    bunch = load_breast_cancer()
    x_train, x_val, y_train, y_val = train_test_split(
        bunch.data, bunch.target, test_size=VAL_SIZE, random_state=SEED, stratify=bunch.target
    )
    scaler = StandardScaler().fit(x_train)  # fitted on the training part only
    return _Data(
        scaler.transform(x_train),
        scaler.transform(x_val),
        y_train,
        y_val,
        [str(f) for f in bunch.feature_names],
        [str(t) for t in bunch.target_names],
    )


# -- the training loops ---------------------------------------------------------------
def _sgd_logreg(alpha: float) -> Callable[[_Data, StepCallback], Any]:
    def train(data: _Data, on_step: StepCallback) -> Any:
        import numpy as np
        from sklearn.linear_model import SGDClassifier

        model = SGDClassifier(loss="log_loss", alpha=alpha, random_state=SEED)
        rng = np.random.default_rng(SEED)
        classes = np.unique(data.y_train)
        for epoch in range(1, SGD_EPOCHS + 1):
            order = rng.permutation(len(data.y_train))
            model.partial_fit(data.x_train[order], data.y_train[order], classes=classes)
            on_step(
                epoch,
                model.predict_proba(data.x_train)[:, 1],
                model.predict_proba(data.x_val)[:, 1],
            )
        return model

    return train


def _random_forest(max_trees: int, every: int) -> Callable[[_Data, StepCallback], Any]:
    def train(data: _Data, on_step: StepCallback) -> Any:
        from sklearn.ensemble import RandomForestClassifier

        model = RandomForestClassifier(
            n_estimators=every, max_features="sqrt", warm_start=True, random_state=SEED
        )
        for trees in range(every, max_trees + 1, every):
            model.set_params(n_estimators=trees)  # warm start: adds trees to the forest
            model.fit(data.x_train, data.y_train)
            on_step(
                trees,
                model.predict_proba(data.x_train)[:, 1],
                model.predict_proba(data.x_val)[:, 1],
            )
        return model

    return train


def _gradient_boosting(stages: int, learning_rate: float, max_depth: int):
    def train(data: _Data, on_step: StepCallback) -> Any:
        from sklearn.ensemble import GradientBoostingClassifier

        model = GradientBoostingClassifier(
            n_estimators=stages,
            learning_rate=learning_rate,
            max_depth=max_depth,
            subsample=0.8,
            random_state=SEED,
        )
        model.fit(data.x_train, data.y_train)
        staged = zip(
            model.staged_predict_proba(data.x_train),
            model.staged_predict_proba(data.x_val),
            strict=True,
        )
        for stage, (p_train, p_val) in enumerate(staged, start=1):
            on_step(stage, p_train[:, 1], p_val[:, 1])
        return model

    return train


def _candidates() -> list[_Candidate]:
    return [
        _Candidate(
            "logreg-alpha-1e-4",
            "linear",
            {"model": "SGDClassifier", "loss": "log_loss", "alpha": 1e-4, "epochs": SGD_EPOCHS},
            SGD_EPOCHS,
            _sgd_logreg(1e-4),
        ),
        _Candidate(
            "logreg-alpha-1e-2",
            "linear",
            {"model": "SGDClassifier", "loss": "log_loss", "alpha": 1e-2, "epochs": SGD_EPOCHS},
            SGD_EPOCHS,
            _sgd_logreg(1e-2),
        ),
        _Candidate(
            "random-forest",
            "bagging",
            {"model": "RandomForestClassifier", "n_estimators": 100, "max_features": "sqrt"},
            10,
            _random_forest(100, 10),
        ),
        _Candidate(
            "gradient-boosting",
            "boosting",
            {
                "model": "GradientBoostingClassifier",
                "n_estimators": 100,
                "learning_rate": 0.1,
                "max_depth": 2,
                "subsample": 0.8,
            },
            100,
            _gradient_boosting(100, 0.1, 2),
        ),
    ]


# -- one run --------------------------------------------------------------------------
def _log_loss(y: Any, p: Any) -> float:
    """Binary cross-entropy (what sklearn's log_loss computes, without its per-call
    input checks, which cost more than the training steps here)."""
    import numpy as np

    p = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _confusion_figure(matrix: Any, labels: list[str], title: str) -> Any:
    """A confusion-matrix figure drawn on an Agg canvas (no pyplot, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    high = matrix.max() / 2
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            color = "white" if matrix[i, j] > high else "black"
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color=color)
    return fig


def _train_one(
    cand: _Candidate, data: _Data, progress: Progress, base_params: dict[str, Any]
) -> str:
    from sklearn.metrics import (
        accuracy_score,
        classification_report,
        confusion_matrix,
        f1_score,
        log_loss,
        roc_auc_score,
    )

    task = progress.add_task(cand.name, total=cand.steps)
    tags = {"model_family": cand.family, "dataset": "breast_cancer", "demo": EXPERIMENT}
    with my.start_run(experiment=EXPERIMENT, run_name=cand.name, tags=tags) as run:
        my.log_params(base_params | cand.params)

        def on_step(step: int, p_train: Any, p_val: Any) -> None:
            my.log_metrics(
                {
                    "train_loss": _log_loss(data.y_train, p_train),
                    "val_loss": _log_loss(data.y_val, p_val),
                    "val_accuracy": float(((p_val > 0.5) == data.y_val).mean()),
                },
                step=step,
            )
            progress.advance(task)

        started = time.perf_counter()
        model = cand.train(data, on_step)
        fit_time = time.perf_counter() - started

        proba = model.predict_proba(data.x_val)[:, 1]
        predicted = model.predict(data.x_val)
        final = {
            "accuracy": accuracy_score(data.y_val, predicted),
            "f1": f1_score(data.y_val, predicted),
            "roc_auc": roc_auc_score(data.y_val, proba),
            "log_loss": log_loss(data.y_val, proba, labels=[0, 1]),
            "fit_time_s": fit_time,
        }
        my.log_metrics(final, step=cand.steps)

        matrix = confusion_matrix(data.y_val, predicted)
        my.log_figure(
            _confusion_figure(matrix, data.target_names, cand.name), "confusion_matrix.png"
        )
        my.log_dict(
            {
                "dataset": "sklearn.datasets.load_breast_cancer",
                "features": data.features,
                "target_names": data.target_names,
                "preprocessing": "StandardScaler fitted on the training split",
            },
            "features.json",
        )
        report = classification_report(data.y_val, predicted, target_names=data.target_names)
        summary = [
            f"run {run.run_id} ({cand.name}, {cand.family})",
            f"model: {model!r}",
            "",
            *(f"{k:<12} {v:.4f}" for k, v in final.items()),
            "",
            report,
        ]
        my.log_text("\n".join(summary), "summary.txt")
    progress.console.print(
        f"[green]✓[/green] {cand.name:<18} roc_auc {final['roc_auc']:.4f}  "
        f"accuracy {final['accuracy']:.4f}  ({fit_time:.1f}s)"
    )
    return run.run_id


# -- the report -----------------------------------------------------------------------
# (metric, column header, format) of the comparison table
_REPORTED = (
    ("roc_auc", "roc_auc", ".4f"),
    ("accuracy", "accuracy", ".4f"),
    ("f1", "f1", ".4f"),
    ("log_loss", "log_loss", ".4f"),
)


def _ranked_runs(run_ids: list[str]) -> Any:
    """This session's runs as a DataFrame, best first, as the store orders them."""
    quoted = ", ".join(f"'{r}'" for r in run_ids)
    return my.search_runs(
        experiment_names=[EXPERIMENT],
        filter_string=f"attributes.run_id IN ({quoted})",
        order_by=["metrics.roc_auc DESC", "metrics.log_loss ASC"],
    )


def _comparison_table(frame: Any) -> Table:
    table = Table(
        title=f"Runs of experiment '{EXPERIMENT}', best roc_auc first",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        title_justify="left",
    )
    for header in ("#", "run id", "name"):
        table.add_column(header, no_wrap=True)
    for _, header, _ in _REPORTED:
        table.add_column(header, justify="right", no_wrap=True)
    for rank, row in enumerate(frame.to_dict("records"), start=1):
        table.add_row(
            str(rank),
            row["run_id"][:8],
            row["run_name"],
            *(format(row[f"metrics.{key}"], fmt) for key, _, fmt in _REPORTED),
            style="bold green" if rank == 1 else None,
        )
    return table


def _next_steps(console: Console, best: list[str]) -> None:
    artifacts = my.get_run(best[0]).info.artifact_uri
    url = "http://127.0.0.1:5000"
    lines = [
        ("", f"The best run's artifacts (confusion matrix, features, summary): {artifacts}"),
        ("", "Look further (from this folder, with the same MODELYARD_* settings):"),
        (f"  modelyard runs list --experiment {EXPERIMENT}", "the runs, as a table"),
        (f"  modelyard runs show {best[0]}", "one run in full"),
        (f"  modelyard runs compare {best[0]} {best[1]} --diff-only", "two runs side by side"),
        ("  modelyard server", f"then open {url}/docs"),
        (
            f"  export MLFLOW_TRACKING_URI={url}",
            "the mlflow client then reads and writes these runs too, e.g.",
        ),
        (
            "  python -c \"import mlflow; print(mlflow.search_runs(experiment_names=['"
            + EXPERIMENT
            + "']))\"",
            "",
        ),
    ]
    console.print()
    for command, note in lines:
        text = Text()
        if command:
            text.append(command, style="bold cyan")
            if note:
                text.append(f"   # {note}", style="dim")
        else:
            text.append(note)
        console.print(text, soft_wrap=True)


def run_quickstart(console: Console | None = None) -> list[str]:
    """Train, track and compare the quickstart models; returns the new run ids, best first.

    - ``console``: where to print (progress bar only when it is a terminal).
    """
    console = console or Console()
    _require_sklearn()
    data = _load_data()
    base_params = {
        "dataset": "breast_cancer",
        "val_size": VAL_SIZE,
        "seed": SEED,
        "n_train": len(data.y_train),
        "n_val": len(data.y_val),
        "n_features": len(data.features),
    }
    candidates = _candidates()
    console.print(
        f"Training {len(candidates)} models on scikit-learn's breast-cancer data "
        f"({len(data.y_train)} train / {len(data.y_val)} validation rows), "
        f"tracked in experiment '{EXPERIMENT}'."
    )
    progress = Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    with progress:
        run_ids = [_train_one(c, data, progress, base_params) for c in candidates]
    frame = _ranked_runs(run_ids)
    console.print()
    console.print(_comparison_table(frame))
    ranked = [str(r) for r in frame["run_id"]]
    _next_steps(console, ranked)
    return ranked
