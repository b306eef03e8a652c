"""Model groups, step 1 of 3: a Model becomes a group of Deployments, with routing settings
and fallbacks. The old per-model provider and upstream name stay (nullable, defaulted) until step 2 has
moved them onto a deployment; step 3 removes them. (Defaulted, so that migrating back can
add them again before step 2 backwards fills them in.)"""

import django.core.validators
import django.db.models.deletion
import gateway.catalog.models
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('gateway', '0005_model_request_bounds'),
    ]

    operations = [
        migrations.AlterField(
            model_name='model',
            name='provider',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='models', to='gateway.provider'),
        ),
        migrations.AlterField(
            model_name='model',
            name='upstream_name',
            field=models.CharField(default='', help_text='The model name the provider expects.', max_length=128),
        ),
        migrations.AlterModelOptions(
            name='model',
            options={'ordering': ['public_name'], 'verbose_name': 'model group'},
        ),
        migrations.AddField(
            model_name='model',
            name='content_policy_fallback',
            field=models.ForeignKey(blank=True, help_text='The group tried when an upstream refuses a request on content policy.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='gateway.model'),
        ),
        migrations.AddField(
            model_name='model',
            name='context_window_fallback',
            field=models.ForeignKey(blank=True, help_text="A group with a larger window, tried when a prompt is longer than this group's window.", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='gateway.model'),
        ),
        migrations.AddField(
            model_name='model',
            name='max_attempts',
            field=models.PositiveSmallIntegerField(default=3, help_text="Per request, over this group's deployments and its fallbacks.", validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(10)], verbose_name='most attempts'),
        ),
        migrations.AddField(
            model_name='model',
            name='retry_deadline_seconds',
            field=models.FloatField(default=60, help_text='No new attempt starts this long after the request arrived.', validators=[gateway.catalog.models.seconds_positive], verbose_name='retry deadline (seconds)'),
        ),
        migrations.AddField(
            model_name='model',
            name='strategy',
            field=models.CharField(choices=[('weighted', 'Weighted random'), ('least_busy', 'Least busy'), ('lowest_latency', 'Lowest latency'), ('lowest_cost', 'Lowest cost'), ('priority', 'Priority order')], default='weighted', help_text="How a request picks one of the group's healthy deployments.", max_length=16, verbose_name='load balancing'),
        ),
        migrations.CreateModel(
            name='Deployment',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('rpm_limit', models.PositiveIntegerField(blank=True, help_text='Empty: no limit.', null=True, verbose_name='requests per minute')),
                ('tpm_limit', models.PositiveIntegerField(blank=True, help_text='Empty: no limit.', null=True, verbose_name='tokens per minute')),
                ('upstream_name', models.CharField(help_text='The model name the provider expects.', max_length=128)),
                ('name', models.SlugField(blank=True, help_text="Unique in the group; the x-aiproxy-deployment response header. Empty: the provider's name.", max_length=64)),
                ('input_price_per_mtok', models.DecimalField(decimal_places=6, default=0, max_digits=12, verbose_name='input price per 1M tokens (USD)')),
                ('output_price_per_mtok', models.DecimalField(decimal_places=6, default=0, max_digits=12, verbose_name='output price per 1M tokens (USD)')),
                ('weight', models.PositiveIntegerField(default=1, help_text="Weighted random: its share of the requests, relative to the group's other deployments.", validators=[django.core.validators.MinValueValidator(1)])),
                ('priority', models.IntegerField(default=0, help_text='Priority order: lower is tried first.')),
                ('max_in_flight', models.PositiveIntegerField(blank=True, help_text='Across every gateway process. Empty: no limit.', null=True, validators=[django.core.validators.MinValueValidator(1)], verbose_name='most requests in flight')),
                ('connect_timeout', models.FloatField(blank=True, help_text="Empty: the gateway's default.", null=True, validators=[gateway.catalog.models.seconds_positive], verbose_name='connect timeout (s)')),
                ('first_byte_timeout', models.FloatField(blank=True, help_text="From the request sent to the answer's first byte. Empty: the gateway's default.", null=True, validators=[gateway.catalog.models.seconds_positive], verbose_name='first byte timeout (s)')),
                ('total_timeout', models.FloatField(blank=True, help_text="Empty: the gateway's default.", null=True, validators=[gateway.catalog.models.seconds_positive], verbose_name='total timeout (s)')),
                ('enabled', models.BooleanField(default=True)),
                ('health_check', models.BooleanField(default=False, help_text='Probe it in the background (Celery beat), not only by the requests it serves.')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('group', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deployments', to='gateway.model')),
                ('provider', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='deployments', to='gateway.provider')),
            ],
            options={
                'ordering': ['group', 'priority', 'pk'],
                'constraints': [models.UniqueConstraint(fields=('group', 'name'), name='gateway_deployment_name_in_group')],
            },
        ),
        migrations.CreateModel(
            name='ModelFallback',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('position', models.PositiveSmallIntegerField(default=0)),
                ('fallback', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='gateway.model')),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='fallback_links', to='gateway.model')),
            ],
            options={
                'ordering': ['position', 'pk'],
                'constraints': [models.UniqueConstraint(fields=('model', 'fallback'), name='gateway_modelfallback_once'), models.CheckConstraint(condition=models.Q(('model', models.F('fallback')), _negated=True), name='gateway_modelfallback_not_itself')],
            },
        ),
    ]
