"""The ephemeral stack's signing worker: the project's Celery app, plus a file that tells the
supervisor the worker consumes its queue (so the JSON line is printed only once a CSR would be
signed at once).

    celery -A server.testkit.worker:app worker -Q hsm -c 1
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery.signals import worker_ready

from server.celery import app

__all__ = ["app"]


@worker_ready.connect
def _announce(**kwargs: Any) -> None:
    marker = os.environ.get("E2EE_TESTKIT_WORKER_READY")
    if marker:
        Path(marker).touch()
