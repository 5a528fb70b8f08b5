"""Wake the waiting view as soon as the worker has decided an order.

With a Redis broker the worker pushes to a short-lived list per order and the view blocks on
it (BLPOP); the order row stays the truth, the push is only a wake-up. Without Redis (the
embedded filesystem broker) the view falls back to polling the row."""

from __future__ import annotations

import logging
from functools import cache

from django.conf import settings

log = logging.getLogger(__name__)

_TTL = 120  # seconds a wake-up waits for its reader


@cache
def _client():  # -> redis.Redis | None
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)


def _key(order_id: int) -> str:
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    return f"{prefix}e2ee:certificate-order:{order_id}"


def enabled() -> bool:
    return _client() is not None


def order_decided(*, order_id: int) -> None:
    client = _client()
    if client is None:
        return
    try:
        with client.pipeline() as pipe:
            pipe.rpush(_key(order_id), b"1").expire(_key(order_id), _TTL).execute()
    except Exception as error:  # a lost wake-up only costs the waiter a poll interval
        log.warning("could not signal certificate order %s: %s", order_id, type(error).__name__)


def order_wait_signal(*, order_id: int, timeout: float) -> None:
    """Block up to `timeout` seconds for the worker's wake-up (returns early on it)."""
    client = _client()
    if client is None or timeout <= 0:
        return
    try:
        client.blpop([_key(order_id)], timeout=max(timeout, 0.01))
    except Exception as error:
        log.warning("waiting for certificate order %s: %s", order_id, type(error).__name__)
