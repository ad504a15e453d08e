"""The Celery app: broker and result backend are the same Redis as the channel layer."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warroom.settings")

app = Celery("warroom")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
