"""The Celery app: worker and beat share Django settings (CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiproxy_site.settings")

app = Celery("aiproxy")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
