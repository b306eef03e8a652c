"""Model groups, step 2 of 3: each existing model becomes a one-deployment group, its
provider, upstream name and prices moving to a deployment named after the provider.

Backwards, each group keeps its first deployment (lowest priority, then oldest) as the
model's provider, upstream name and prices; the other deployments, and a group without
any, cannot be expressed in the old schema, so a group without a deployment stops the
reversal with its name."""

from typing import Any

from django.db import migrations


def deployments_from_models(apps: Any, schema_editor: Any) -> None:
    Model = apps.get_model("gateway", "Model")
    Deployment = apps.get_model("gateway", "Deployment")
    for model in Model.objects.using(schema_editor.connection.alias).select_related("provider"):
        if model.provider is None or model.deployments.exists():
            continue
        Deployment.objects.using(schema_editor.connection.alias).create(
            group=model, provider=model.provider, name=model.provider.name, upstream_name=model.upstream_name,
            input_price_per_mtok=model.input_price_per_mtok, output_price_per_mtok=model.output_price_per_mtok,
        )


def models_from_deployments(apps: Any, schema_editor: Any) -> None:
    Model = apps.get_model("gateway", "Model")
    for model in Model.objects.using(schema_editor.connection.alias):
        first = model.deployments.order_by("priority", "pk").first()
        if first is None:
            raise RuntimeError(f"The model group {model.public_name!r} has no deployment, so it has no provider in the "
                               "old schema: give it one or delete it, then migrate back again.")
        model.provider_id = first.provider_id
        model.upstream_name = first.upstream_name
        model.input_price_per_mtok = first.input_price_per_mtok
        model.output_price_per_mtok = first.output_price_per_mtok
        model.save(update_fields=["provider", "upstream_name", "input_price_per_mtok", "output_price_per_mtok"])


class Migration(migrations.Migration):

    dependencies = [
        ('gateway', '0006_model_groups'),
    ]

    operations = [
        migrations.RunPython(deployments_from_models, models_from_deployments),
    ]
