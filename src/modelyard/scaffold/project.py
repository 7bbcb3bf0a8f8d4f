"""Create a project: the pipeline, its data contract, its triggers and its CI.

The files (every one meant to be read and changed):

- ``pipelines.py``: a copy of the continuous-training template (`pipelines.ct`),
  with ``training`` naming its pipeline;
- ``data/<sample>``: the given data, or a generated churn sample;
- ``suite.yaml``: the validation suite inferred from it (types, nulls, ranges,
  categories; no distribution checks: drift is monitoring's business);
- ``agent.yaml``: retrain on a new dataset version, on a drift alert, weekly;
- ``.github/workflows/modelyard.yml``: validate the data, train on the sample and
  gate the model with ``modelyard check`` on every push;
- ``modelyard.toml``, ``.gitignore``, ``README.md``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from modelyard.core.errors import InvalidParameter, ResourceAlreadyExists

__all__ = ["Project", "create_project"]

_GITIGNORE = ".modelyard/\n.modelyard-ci/\ndemo-output/\n__pycache__/\n"
_TOML = """# modelyard settings for this project (environment variables MODELYARD_* win).
# home = ".modelyard"
# db_url = "postgresql+psycopg://user@host/db"
# artifacts = "s3://bucket/prefix"
# data_remote = "s3://bucket/data"
"""
_README = """# {name}

Made with `modelyard init`.

```bash
modelyard data validate --suite suite.yaml {sample}       # the data contract
modelyard data register {dataset} {sample}               # version the data
modelyard pipelines run pipelines:training -p dataset={dataset}   # validate, train, gate, register
modelyard agent --config agent.yaml                       # retrain on new data and drift
```

CI (`.github/workflows/modelyard.yml`) runs the same commands on every push and
fails when the data breaks the suite or the model misses its gate.
"""


@dataclass
class Project:
    root: Path
    files: list[Path]


def _render(name: str, values: dict[str, str]) -> str:
    text = resources.files("modelyard.scaffold").joinpath(name).read_text()
    return text.format(**values)


def create_project(
    folder: str | Path,
    *,
    data: str | Path | None = None,
    target: str = "churned",
    model: str = "churn",
    dataset: str = "churn",
    min_accuracy: float = 0.6,
) -> Project:
    """Write a new project into ``folder`` (which must be new or empty)."""
    import pandas as pd

    from modelyard.datasets.validation import infer_suite

    root = Path(folder)
    if root.exists() and any(root.iterdir()):
        raise ResourceAlreadyExists(f"{root} is not empty: modelyard init needs a new folder")
    if data is not None and not Path(data).is_file():
        raise InvalidParameter(f"--data {data}: no such file (a Parquet or CSV file)")
    if data is None:
        from modelyard.demo.closed_loop import churn_data

        sample, frame = Path("data/sample.parquet"), churn_data(1_000, seed=7)
    else:
        sample = Path("data") / Path(data).name
        frame = pd.read_csv(data) if sample.suffix == ".csv" else pd.read_parquet(data)
    if target not in frame.columns:  # checked before anything is written
        raise InvalidParameter(
            f"--target {target!r} is not a column of {sample.name} ({', '.join(frame.columns)})"
        )
    (root / "data").mkdir(parents=True, exist_ok=True)
    if data is None:
        frame.to_parquet(root / sample, index=False)
    else:
        shutil.copyfile(data, root / sample)
    infer_suite(frame, distribution=False).save(root / "suite.yaml")
    template = resources.files("modelyard.pipelines").joinpath("ct.py").read_text()
    pipelines = template + (
        "\n\n# The name agent.yaml and the CI workflow run (modelyard init).\n"
        "training = continuous_training\n"
    )
    values = {
        "name": root.resolve().name,
        "sample": sample.as_posix(),
        "dataset": dataset,
        "dataset_name": dataset,
        "target": target,
        "model": model,
        "min_accuracy": f"{min_accuracy:g}",
    }
    written = {
        "pipelines.py": pipelines,
        "agent.yaml": _render("agent.yaml", values),
        ".github/workflows/modelyard.yml": _render("workflow.yml", values),
        "modelyard.toml": _TOML,
        ".gitignore": _GITIGNORE,
        "README.md": _README.format(**values),
    }
    for rel, text in written.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    files = sorted([root / sample, root / "suite.yaml", *(root / rel for rel in written)])
    return Project(root, files)
