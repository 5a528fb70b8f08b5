"""Anonymous upload into a file-drop link (PROTOCOL.md §1.10): encrypt the file with a fresh
key, seal its entry for every user of the folder, PUT the blob into the public WebDAV root and
add the entry with PUT meta-data/{id}/filedrop. The owner's client moves the entry into the
folder the next time it writes (client.ops.transaction).

The uploader has no account: the folder's metadata is still verified as far as an outsider
can — the signature, its signer among the users, every certificate issued by the server key
(the pinned one when this device has an account, else the one the server presents) — so the
file is sealed only for the folder's real members.
"""

from __future__ import annotations

import mimetypes
import re
import uuid as uuidlib
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from client import crypto
from client.api import ServerApi
from client.crypto.aead import new_file_secret
from client.errors import LocalPathError, SignerNotRootUserError, UsageProblem
from client.keystore import Keystore
from client.ops.session import Progress
from client.ops.transfer import _SealedBody
from client.protocol import TAG_LENGTH, FileEntry, MetadataDocumentV2, parse_metadata_document

_LINK = re.compile(r"^(?P<base>.*?)/(?:index\.php/)?s/(?P<token>[A-Za-z0-9]+)/?$")


def parse_link(url: str) -> tuple[str, str]:
    """``https://host/s/<token>`` → (server base URL, share token)."""
    parts = urlsplit(url)
    match = _LINK.match(f"{parts.scheme}://{parts.netloc}{parts.path}")
    if not parts.scheme or not match:
        raise UsageProblem("a file-drop link looks like https://server/s/<token>")
    return match["base"], match["token"]


def filedrop(link: str, local: Path, progress: Progress | None = None) -> str:
    if not local.is_file():
        raise LocalPathError(f"{local} is not a file")
    base, token = parse_link(link)
    keystore = Keystore()
    with ServerApi(base) as api:
        file_id, text, signature = api.public_folder_metadata(token)
        document = parse_metadata_document(text)
        if not isinstance(document, MetadataDocumentV2) or not document.is_root:
            raise UsageProblem("the link does not point at an end-to-end encrypted folder")
        pinned = keystore.pinned_server_key() if keystore.has_account() else None
        server_key = pinned or crypto.load_public_key(api.server_key())
        recipients = _verified_users(document, signature, server_key)
        secret = new_file_secret()
        blob = uuidlib.uuid4().hex
        size = local.stat().st_size
        with local.open("rb") as handle:
            body = _SealedBody(handle, secret, progress, size)
            try:
                api.public_upload(token, blob, body, size + TAG_LENGTH)
            finally:
                body.close()
        mimetype = mimetypes.guess_type(local.name)[0] or "application/octet-stream"
        entry = FileEntry(local.name, mimetype, secret.key, secret.nonce, body.tag)
        sealed = crypto.create_filedrop_entry(entry, recipients, folder=str(file_id))
        api.add_filedrop(file_id, {blob: sealed.to_json()}, token)
    return local.name


def _verified_users(document: MetadataDocumentV2, signature: str, server_key):  # noqa: ANN001
    now = datetime.now(UTC)
    signer = crypto.verify_metadata_signature(document.source, signature)
    recipients = []
    for user in document.users:
        cert = crypto.load_certificate(user.certificate_pem)
        crypto.verify_certificate(cert, server_public_key=server_key, user_id=user.user_id, now=now)
        recipients.append((user.user_id, cert.public_key))
    if not any(
        crypto.load_certificate(u.certificate_pem).der == signer.der for u in document.users
    ):
        raise SignerNotRootUserError("the folder's metadata is signed by someone not a member")
    return recipients
