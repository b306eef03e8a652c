"""Model groups, step 3 of 3: provider, upstream name and prices now live on each deployment."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('gateway', '0007_model_groups_deployments_from_models'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='model',
            name='input_price_per_mtok',
        ),
        migrations.RemoveField(
            model_name='model',
            name='output_price_per_mtok',
        ),
        migrations.RemoveField(
            model_name='model',
            name='provider',
        ),
        migrations.RemoveField(
            model_name='model',
            name='upstream_name',
        ),
    ]
