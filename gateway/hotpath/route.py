"""Step 5 of the pipeline: model alias -> deployment."""

from __future__ import annotations

from .directory import Deployment, KeyRecord
from .errors import not_found


def route_select(catalog: dict[str, Deployment], model: str, key: KeyRecord) -> Deployment:
    deployment = catalog.get(model)
    if deployment is None or not deployment.visible_to(key.workspace_id):
        raise not_found(
            f"The model '{model}' does not exist or you do not have access to it.", code="model_not_found", param="model"
        )
    return deployment


def models_visible(catalog: dict[str, Deployment], key: KeyRecord) -> list[Deployment]:
    return sorted((d for d in catalog.values() if d.visible_to(key.workspace_id)), key=lambda d: d.public_name)
