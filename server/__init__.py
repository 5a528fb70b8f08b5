# Load the Celery app with Django, so every task (also @shared_task ones) is bound to it and
# .delay() reaches the configured broker from any process.
from .celery import app as celery_app

__all__ = ("celery_app",)
