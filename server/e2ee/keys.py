"""Wrapped private keys: validated for shape, stored opaque, never replaced."""

import base64
import binascii

from django.db import IntegrityError, transaction

from server.accounts.models import User
from server.errors import BadRequest, Conflict, NotFound

from .models import WrappedPrivateKey

IV_BYTES, SALT_BYTES = 12, 40


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def wrapped_key_validate(wrapped: str) -> None:
    """`base64(ct‖tag)|base64(iv 12)|base64(salt 40)`, as current Nextcloud servers require."""
    parts = wrapped.split("|")
    try:
        if len(parts) != 3 or not _b64(parts[0]):
            raise ValueError
        if len(_b64(parts[1])) != IV_BYTES or len(_b64(parts[2])) != SALT_BYTES:
            raise ValueError
    except (ValueError, binascii.Error):
        raise BadRequest("Invalid private key format") from None


def private_key_store(*, user: User, key_owner: str, wrapped: str) -> WrappedPrivateKey:
    wrapped_key_validate(wrapped)
    try:
        with transaction.atomic():
            return WrappedPrivateKey.objects.create(key_owner=key_owner, user=user, wrapped=wrapped)
    except IntegrityError:
        raise Conflict("A private key already exists") from None


def private_key_get(*, key_owner: str) -> str:
    record = WrappedPrivateKey.objects.filter(key_owner=key_owner).first()
    if record is None:
        raise NotFound("Could not find the private key")
    return record.wrapped


def private_key_delete(*, key_owner: str) -> None:
    deleted, _ = WrappedPrivateKey.objects.filter(key_owner=key_owner).delete()
    if not deleted:
        raise NotFound("Could not find the private key")
