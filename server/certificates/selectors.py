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
    from .models import CertificateRevocation

    return [
        {"serial": serial, "revokedAt": revoked_at.isoformat().replace("+00:00", "Z")}
        for serial, revoked_at in CertificateRevocation.objects.order_by("revoked_at").values_list(
            "certificate__serial", "revoked_at"
        )
    ]
