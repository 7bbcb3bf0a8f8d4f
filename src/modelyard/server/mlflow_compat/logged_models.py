"""MLflow 3's logged models, as far as a run's artifacts need them: this server records
none, so a search finds none and a lookup is RESOURCE_DOES_NOT_EXIST.

MLflow's client searches logged models whenever it lists or downloads a run's
artifacts through a ``runs:/`` URI (a model may live beside the run).
"""

from __future__ import annotations

from fastapi import APIRouter

from modelyard.core.errors import ResourceNotFound
from modelyard.server.deps import Tracking
from modelyard.server.mlflow_compat.schemas import SearchLoggedModels

__all__ = ["router"]

router = APIRouter(prefix="/logged-models")


@router.post("/search")
def search_logged_models(body: SearchLoggedModels, tracking: Tracking) -> dict:
    for experiment_id in body.experiment_ids:
        tracking.get_experiment(experiment_id)  # unknown ids fail as they would elsewhere
    return {"models": []}


@router.get("/{model_id}")
def get_logged_model(model_id: str) -> dict:
    raise ResourceNotFound(
        f"No logged model {model_id!r}: this server does not record MLflow logged models"
    )
