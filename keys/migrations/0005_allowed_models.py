import django.db.models
from django.db import migrations

import keys.models


class Migration(migrations.Migration):

    dependencies = [
        ('keys', '0004_budget_sub_cent'),
    ]

    operations = [
        migrations.AddField(
            model_name='apikey',
            name='allowed_models',
            field=django.db.models.JSONField(blank=True, default=list, help_text='The model names this key may call; empty: every model the workspace can use. A renamed or deleted model no longer matches, so a key limited to it must be given the new name.', validators=[keys.models.model_names_validate], verbose_name='models'),
        ),
    ]
