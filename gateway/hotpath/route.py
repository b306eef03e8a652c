"""Step 5 of the pipeline: model name -> model group -> the deployments to try."""

from __future__ import annotations

from .directory import Deployment, KeyRecord, ModelGroup
from .errors import not_found


def route_group(catalog: dict[str, ModelGroup], model: str, key: KeyRecord) -> ModelGroup:
    group = catalog.get(model)
    if group is None or not group.visible_to(key.workspace_id):
        raise not_found(
            f"The model '{model}' does not exist or you do not have access to it.", code="model_not_found", param="model"
        )
    return group


def route_select(catalog: dict[str, ModelGroup], model: str, key: KeyRecord) -> Deployment:
    group = route_group(catalog, model, key)
    return group.deployments[0]


def models_visible(catalog: dict[str, ModelGroup], key: KeyRecord) -> list[ModelGroup]:
    return sorted((g for g in catalog.values() if g.visible_to(key.workspace_id)), key=lambda g: g.name)
