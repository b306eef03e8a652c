"""Republish the catalog to the gateway's hot directory whenever it changes (built on
the saving connection, so it already sees the change)."""

from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from .models import Deployment, GlobalLimits, Model, ModelFallback, Provider
from .publish import catalog_publish


def _publish(**kwargs: object) -> None:
    catalog_publish()


for _model in (Provider, Model, Deployment, ModelFallback, GlobalLimits):
    receiver(post_save, sender=_model, dispatch_uid=f"catalog-save-{_model.__name__}")(_publish)
    receiver(post_delete, sender=_model, dispatch_uid=f"catalog-delete-{_model.__name__}")(_publish)


@receiver(m2m_changed, sender=Model.workspaces.through, dispatch_uid="catalog-m2m")
def _publish_after_m2m(action: str, **kwargs: object) -> None:
    # one rebuild per change, not also for the pre_add/pre_remove/pre_clear halves
    if action.startswith("post_"):
        catalog_publish()
