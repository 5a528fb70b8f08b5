from server.errors import NotFound

from .models import Certificate


def certificates_pem(*, key_owners: list[str]) -> dict[str, str]:
    """Live certificates of these identities; NotFound if any has none."""
    found = dict(
        Certificate.objects.filter(key_owner__in=key_owners, deleted_at__isnull=True).values_list(
            "key_owner", "pem"
        )
    )
    missing = [owner for owner in key_owners if owner not in found]
    if missing:
        raise NotFound("Could not find the public key of every user")
    return {owner: found[owner] for owner in key_owners}


def certificate_exists(*, key_owner: str) -> bool:
    return Certificate.objects.filter(key_owner=key_owner, deleted_at__isnull=True).exists()


def revoked_serials() -> list[dict[str, str]]:
    """Serials (hex) of revoked certificates with the revocation time, oldest first."""
    from .revocation import revocation_entries

    return revocation_entries()


def revocation_list_signed():  # -> RevocationList | None
    """The newest signed edition. With inline signing (software CA in this process) the first
    one is made on demand; otherwise `ca init` or the signing worker's start makes it."""
    from django.conf import settings

    from .revocation import revocation_list_latest

    edition = revocation_list_latest()
    if edition is None and settings.E2EE_SIGNING == "inline" and settings.E2EE_SIGNER == "software":
        from .services import revocation_list_dispatch

        revocation_list_dispatch()
        edition = revocation_list_latest()
    return edition
