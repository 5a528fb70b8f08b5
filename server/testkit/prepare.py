"""Run once by the ephemeral supervisor, in the stack's environment, before web and worker
start: migrate, the software CA, the users. Reads the users wanted as JSON on stdin and answers
with their credentials and the server key as JSON on stdout (a pipe, never a terminal or log).

    python -m server.testkit.prepare < users.json
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "server.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from server.certificates.authority import ca_ensure_software, ca_public_key_pem

    from .services import kit_user_create

    wanted = json.load(sys.stdin)
    call_command("migrate", interactive=False, verbosity=0)
    if settings.E2EE_SIGNER == "software":
        ca_ensure_software()
    users = [
        kit_user_create(uid=u["id"], password=u.get("password"), admin=bool(u.get("admin")))
        for u in wanted["users"]
    ]
    json.dump(
        {"users": [u.as_dict() for u in users], "server_key": ca_public_key_pem()}, sys.stdout
    )


if __name__ == "__main__":
    main()
