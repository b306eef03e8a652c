"""Step 5 of the pipeline: model name -> model group (the deployments to try are chosen
by forward.Route and balance.candidates)."""

from __future__ import annotations

from .directory import Deployment, KeyRecord, ModelGroup
from .errors import GatewayError, not_found


def key_allows(key: KeyRecord, name: str) -> bool:
    """Whether the key may use model group `name` (a key limited to a list of groups)."""
    return key.policy.model_allowed(name)


def route_group(catalog: dict[str, ModelGroup], model: str, key: KeyRecord) -> ModelGroup:
    group = catalog.get(model)
    if group is None or not group.visible_to(key.workspace_id) or not key_allows(key, model):
        raise not_found(
            f"The model '{model}' does not exist or you do not have access to it.", code="model_not_found", param="model"
        )
    return group


def route_select(catalog: dict[str, ModelGroup], model: str, key: KeyRecord) -> Deployment:
    """The group's first deployment (where a request needs one deployment and no attempts:
    token counting)."""
    group = route_group(catalog, model, key)
    if not group.deployments:
        raise GatewayError(503, f"The model '{model}' has no deployment enabled.", type="api_error",
                           code="deployments_unavailable")
    return group.deployments[0]


def models_visible(catalog: dict[str, ModelGroup], key: KeyRecord) -> list[ModelGroup]:
    return sorted((g for g in catalog.values() if g.visible_to(key.workspace_id) and key_allows(key, g.name)),
                  key=lambda g: g.name)
