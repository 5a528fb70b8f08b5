"""Nextcloud's share permission bits (OCP\\Constants::PERMISSION_*)."""

READ = 1
UPDATE = 2
CREATE = 4
DELETE = 8
SHARE = 16
ALL = READ | UPDATE | CREATE | DELETE | SHARE


def has(permissions: int, *needed: int) -> bool:
    return all(permissions & bit == bit for bit in needed)
