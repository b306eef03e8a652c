from django.db import migrations

FREE_PLAN_QUOTA = 1000


def free_plan_create(apps, schema_editor):  # type: ignore[no-untyped-def]
    Plan = apps.get_model("billing", "Plan")
    Plan.objects.get_or_create(code="free", defaults={"name": "Free", "monthly_request_quota": FREE_PLAN_QUOTA})


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(free_plan_create, migrations.RunPython.noop)]
