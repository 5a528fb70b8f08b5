"""OpenAPI descriptions of the E2EE endpoints (PROTOCOL.md §3.2), applied in api.py."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from server.openapi import (
    API_VERSION,
    COUNTER,
    FILE_ID,
    FORMAT,
    OCS_HEADERS,
    SIGNATURE,
    TOKEN,
    errors,
    form,
    ocs,
)

TAG = ["end-to-end encryption"]
COMMON = [*OCS_HEADERS, API_VERSION, FORMAT]
ON_FOLDER = [*COMMON, FILE_ID]
PEM = serializers.CharField()


def _component(summary: str) -> str:
    return "".join(
        word.capitalize() for word in summary.replace("-", " ").split() if word.isalnum()
    )


def op(summary: str, *, parameters=(), request=None, ok=None, **error_codes: str):
    return extend_schema(
        summary=summary,
        tags=TAG,
        parameters=list(parameters),
        request=request,
        responses={
            200: ok or ocs(_component(summary) + "Ok"),
            **errors(_component(summary), **error_codes),
        },
    )


SHARE_TOKEN = OpenApiParameter(
    "shareToken",
    str,
    OpenApiParameter.QUERY,
    description="act for a link share the caller owns (v2.1)",
)

PUBLIC_KEY = {
    "get": op(
        "get certificates",
        parameters=[
            *COMMON,
            OpenApiParameter(
                "users",
                str,
                OpenApiParameter.QUERY,
                description='JSON array of user ids, e.g. ["bob"]; the caller is always added',
            ),
        ],
        ok=ocs("Certificates", {"public-keys": serializers.DictField(child=PEM)}),
        e400="users is not a JSON array of strings",
        e404="a user has no certificate",
    ),
    "post": op(
        "issue a certificate",
        parameters=[*COMMON, SHARE_TOKEN],
        request=form("CSRForm", csr="PKCS#10 PEM, CN = user id (or s:<shareToken>)"),
        ok=ocs("IssuedCertificate", {"public-key": PEM}),
        e400="unparsable CSR, bad self-signature, not RSA >= 2048",
        e403="CN is not the caller",
        e409="a certificate exists already",
    ),
    "put": op(
        "store an external certificate",
        parameters=COMMON,
        request=form("CertificateForm", publicKey="certificate PEM with CN = user id"),
        ok=ocs("StoredCertificate", {"public-key": PEM}),
        e400="not a certificate, or CN is not the caller",
        e409="a certificate exists",
    ),
    "delete": op(
        "delete the certificate",
        parameters=COMMON,
        e403="not authenticated with the account password",
        e404="no certificate",
    ),
}

PRIVATE_KEY = {
    "get": op(
        "get the wrapped private key",
        parameters=COMMON,
        ok=ocs("WrappedKey", {"private-key": serializers.CharField()}),
        e404="none stored",
    ),
    "post": op(
        "store the wrapped private key",
        parameters=[*COMMON, SHARE_TOKEN],
        request=form("PrivateKeyForm", privateKey="base64(ct|tag)|base64(iv 12)|base64(salt 40)"),
        ok=ocs("StoredKey", {"private-key": serializers.CharField()}),
        e400="Invalid private key format",
        e409="a private key exists already",
    ),
    "delete": op(
        "delete the wrapped private key",
        parameters=COMMON,
        e403="not authenticated with the account password",
        e404="none stored",
    ),
}

SERVER_KEY = {
    "get": extend_schema(
        summary="the server's public key (bare SPKI PEM)",
        tags=TAG,
        parameters=[API_VERSION, FORMAT],
        auth=[],
        responses={200: ocs("ServerKey", {"public-key": PEM})},
    ),
}

ENCRYPTED_FLAG = {
    "put": op(
        "flag an empty folder encrypted",
        parameters=ON_FOLDER,
        e403="the home folder",
        e404="not found, not a folder, or not empty",
    ),
    "delete": op(
        "clear the flag and delete the metadata",
        parameters=ON_FOLDER,
        e404="not found or not empty",
    ),
}

RESET = {
    "delete": op(
        "delete every encrypted folder of the caller",
        parameters=COMMON,
        ok=ocs("Reset", {"deletedIds": serializers.ListField(child=serializers.IntegerField())}),
        e403="not authenticated with the account password",
    ),
}

LOCK = {
    "post": op(
        "lock a folder of an encrypted tree",
        parameters=[*ON_FOLDER, COUNTER],
        request=form("LockRetry", **{"e2e-token": "optional: retry with this token"}),
        ok=ocs("LockToken", {"e2e-token": serializers.CharField()}),
        e400="counter missing or < 1 (v2)",
        e403="not an encrypted folder, or the home folder",
        e404="no such folder",
        e412="counter not greater than the stored one (v2)",
        e423="locked by another token (v2; v1 answers 403)",
    ),
    "delete": op(
        "unlock: commit the staged writes, or revert them with ?abort=true",
        parameters=[
            *ON_FOLDER,
            TOKEN,
            OpenApiParameter(
                "abort", bool, OpenApiParameter.QUERY, description="revert instead of commit"
            ),
        ],
        e400="no token",
        e403="wrong token",
        e404="not locked",
    ),
}

METADATA = {
    "get": extend_schema(
        summary="the committed metadata document",
        tags=TAG,
        parameters=ON_FOLDER,
        responses={
            200: ocs(
                "Metadata",
                {"meta-data": serializers.CharField()},
                "response header X-NC-E2EE-SIGNATURE carries the signature",
            ),
            **errors("GetMetadata", e403="v1 endpoint on v2 metadata", e404="no metadata"),
        },
    ),
    "post": op(
        "create the metadata (staged under the lock)",
        parameters=[*ON_FOLDER, TOKEN, SIGNATURE],
        request=form("MetadataForm", metaData="the metadata JSON document"),
        ok=ocs("MetadataCreated", {"meta-data": serializers.CharField()}),
        e400="missing signature or document",
        e403="not locked with this token",
        e409="metadata exists already",
    ),
    "put": op(
        "replace the metadata (staged under the lock)",
        parameters=[*ON_FOLDER, TOKEN, SIGNATURE],
        request=form("MetadataUpdateForm", metaData="the metadata JSON document"),
        ok=ocs("MetadataUpdated", {"meta-data": serializers.CharField()}),
        e400="missing signature or document",
        e404="no metadata",
        e412="not locked with this token",
    ),
    "delete": op(
        "delete the metadata (staged under the lock)",
        parameters=[*ON_FOLDER, TOKEN],
        e400="no token",
        e404="no metadata",
        e412="not locked with this token",
    ),
}
