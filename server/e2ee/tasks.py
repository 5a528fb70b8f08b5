from celery import shared_task

from .locks import locks_roll_back_stale


@shared_task(name="e2ee.rollback_stale_locks")
def rollback_stale_locks() -> list[int]:
    """Celery beat runs this hourly; see CELERY_BEAT_SCHEDULE."""
    return locks_roll_back_stale()
