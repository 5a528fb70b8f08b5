"""The Celery app (`server.celery:app`); the signing worker consumes queue `hsm`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "server.settings")

app = Celery("e2ee")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
