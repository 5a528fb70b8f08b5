"""Detached CMS SignedData over metadata (PROTOCOL.md §1.7), built and checked with asn1crypto.

`cryptography` can build PKCS#7 signatures but cannot verify them, and it will not load the
serial-0 certificates Nextcloud servers issue. So the ASN.1 structure is assembled and read with
asn1crypto and every primitive (SHA-256, RSASSA-PKCS1-v1_5) comes from `cryptography`. Both DER
and BER (Android, indefinite lengths) are accepted on read.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from asn1crypto import algos, cms
from asn1crypto import x509 as asn1_x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from client.crypto.keys import HASHES, Certificate, check_key_pair, load_certificate
from client.errors import FormatError, MetadataSignatureError
from client.protocol import b64decode, signed_content


def _digest(name: str, data: bytes) -> bytes:
    h = hashes.Hash(HASHES[name]())
    h.update(data)
    return h.finalize()


def sign_detached(
    content: bytes,
    certificate: Certificate,
    private_key: rsa.RSAPrivateKey,
    *,
    signing_time: datetime,
) -> bytes:
    """DER CMS SignedData, detached, SHA-256 / RSASSA-PKCS1-v1_5, signer = issuerAndSerial.

    Signed attributes are those OpenSSL's ``CMS_sign`` writes minus SMIMECapabilities:
    contentType, signingTime, messageDigest.
    """
    check_key_pair(private_key, certificate.public_key)
    cert = asn1_x509.Certificate.load(certificate.der)
    attributes = [
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute(
            {"type": "signing_time", "values": [cms.Time({"utc_time": signing_time})]}
        ),
        cms.CMSAttribute({"type": "message_digest", "values": [_digest("sha256", content)]}),
    ]
    # DER orders a SET OF by the encodings of its members.
    signed_attrs = cms.CMSAttributes(sorted(attributes, key=lambda a: a.dump()))
    signature = private_key.sign(signed_attrs.dump(), padding.PKCS1v15(), hashes.SHA256())
    signer = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {"issuer": cert.issuer, "serial_number": cert.serial_number}
                    )
                }
            ),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
            "signed_attrs": signed_attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "rsassa_pkcs1v15"}),
            "signature": signature,
        }
    )
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {"content_type": "data"},
            "certificates": [cert],
            "signer_infos": [signer],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


def verify_detached(content: bytes, signature_der: bytes) -> Certificate:
    """Verify a detached CMS signature over ``content``; return the signer's certificate.

    No chain validation here: the caller decides whether the signer is trusted.
    """
    try:
        return _verify(content, signature_der)
    except MetadataSignatureError:
        raise
    except (
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        IndexError,
        FormatError,
        UnsupportedAlgorithm,
    ) as exc:
        raise MetadataSignatureError("signature is not a readable CMS SignedData") from exc


def _verify(content: bytes, signature_der: bytes) -> Certificate:
    info = cms.ContentInfo.load(signature_der)
    if info["content_type"].native != "signed_data":
        raise MetadataSignatureError("CMS content is not SignedData")
    signed_data = info["content"]
    encap = signed_data["encap_content_info"]
    if encap["content_type"].native != "data":
        raise MetadataSignatureError("CMS encapsulated content type is not data")
    embedded = encap["content"].native
    if embedded is not None and not hmac.compare_digest(embedded, content):
        raise MetadataSignatureError("CMS embeds different content")
    signers = signed_data["signer_infos"]
    if len(signers) != 1:
        raise MetadataSignatureError("expected exactly one CMS signer")
    signer = signers[0]
    cert = _signer_certificate(signed_data, signer["sid"])
    digest_name = signer["digest_algorithm"]["algorithm"].native
    if digest_name not in HASHES:
        raise MetadataSignatureError(f"CMS digest {digest_name} not accepted")
    if signer["signature_algorithm"].signature_algo != "rsassa_pkcs1v15":
        raise MetadataSignatureError("CMS signature algorithm not accepted")
    signed_attrs = signer["signed_attrs"]
    if signed_attrs.native is None:
        to_verify = content
    else:
        _check_signed_attributes(signed_attrs, digest_name, content)
        # The signature covers the attributes re-tagged as a universal SET (RFC 5652 §5.4).
        to_verify = signed_attrs.untag().dump()
    try:
        cert.public_key.verify(
            signer["signature"].native, to_verify, padding.PKCS1v15(), HASHES[digest_name]()
        )
    except InvalidSignature as exc:
        raise MetadataSignatureError("metadata signature does not verify") from exc
    return cert


def _check_signed_attributes(
    signed_attrs: cms.CMSAttributes, digest_name: str, content: bytes
) -> None:
    values: dict[str, list[object]] = {}
    for attribute in signed_attrs:
        name = attribute["type"].native
        if name in values:
            raise MetadataSignatureError(f"CMS attribute {name} repeated")
        values[name] = list(attribute["values"].native)
    if values.get("content_type") != ["data"]:
        raise MetadataSignatureError("CMS contentType attribute missing or not data")
    digests = values.get("message_digest")
    if not digests or len(digests) != 1 or not isinstance(digests[0], bytes):
        raise MetadataSignatureError("CMS messageDigest attribute missing")
    if not hmac.compare_digest(digests[0], _digest(digest_name, content)):
        raise MetadataSignatureError("metadata does not match the signed digest")


def _signer_certificate(signed_data: cms.SignedData, sid: cms.SignerIdentifier) -> Certificate:
    for choice in signed_data["certificates"] or []:
        if choice.name != "certificate":
            continue
        cert = choice.chosen
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            matches = (
                cert.issuer == wanted["issuer"]
                and cert.serial_number == wanted["serial_number"].native
            )
        else:  # subject_key_identifier
            matches = cert.key_identifier == sid.chosen.native
        if matches:
            return load_certificate(cert.dump())
    raise MetadataSignatureError("CMS signer certificate not included")


# --- metadata signatures (the X-NC-E2EE-SIGNATURE header) -----------------------------------


def sign_metadata(
    document: Mapping[str, Any],
    certificate: Certificate,
    private_key: rsa.RSAPrivateKey,
    *,
    signing_time: datetime,
) -> str:
    """Base64 detached CMS over :func:`client.protocol.signed_content` of an outer document."""
    der = sign_detached(
        signed_content(document), certificate, private_key, signing_time=signing_time
    )
    return base64.b64encode(der).decode("ascii")


def verify_metadata_signature(document: Mapping[str, Any], signature: str | None) -> Certificate:
    """Verify the header value against a parsed outer document; return the signer certificate."""
    if not signature:
        raise MetadataSignatureError("metadata has no signature")
    try:
        der = b64decode(signature, "signature")
    except FormatError as exc:
        raise MetadataSignatureError("signature is not base64") from exc
    return verify_detached(signed_content(document), der)
