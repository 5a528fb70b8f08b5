"""Property tests: random bytes and random JSON into every parser raise only documented errors."""

from __future__ import annotations

import contextlib
import copy
import gzip
import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client import crypto, protocol
from client.crypto.metadata import gunzip
from client.errors import (
    DecryptionError,
    FormatError,
    IntegrityError,
    KeyUnwrapError,
    MetadataSignatureError,
    WrongMnemonic,
)
from tests.client.conftest import VECTORS

#: E2EE_FUZZ_EXAMPLES=5000 for a deep run; the default keeps the suite fast.
EXAMPLES = int(os.environ.get("E2EE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=25,
)
b64_text = st.binary(max_size=64).map(protocol.b64encode)
text_or_bytes = st.one_of(st.text(max_size=300), st.binary(max_size=300))

WEB = VECTORS / "v2-web-admin-alice"
ROOT_DOC = json.loads((WEB / "root-folder.metadata.json").read_text())
V1_DOC = json.loads((VECTORS / "v1-testdata-version12/metadata/134.meta.data.json").read_text())
ROOT_INNER = json.loads((WEB / "root-folder.metadata.decrypted.json").read_text())
FILEDROP = json.loads((VECTORS / "v2-android-filedrop/filedrop-entry.json").read_text())
KEY = bytes(range(16))


def expect_only(allowed: tuple[type[Exception], ...], func, *args: Any, **kwargs: Any) -> None:
    """Call ``func``: returning or raising one of ``allowed`` is fine; anything else fails."""
    with contextlib.suppress(*allowed):
        func(*args, **kwargs)


def paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every location inside a JSON value."""
    found = [prefix]
    if isinstance(obj, dict):
        for key, value in obj.items():
            found += paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            found += paths(value, (*prefix, index))
    return found


@st.composite
def mutated(draw, original: Any) -> Any:
    """A real document with one location replaced by random JSON (or deleted)."""
    doc = copy.deepcopy(original)
    where = draw(st.sampled_from(paths(doc)))
    if not where:
        return draw(json_values)
    parent = doc
    for step in where[:-1]:
        parent = parent[step]
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[where[-1]]
    else:
        parent[where[-1]] = draw(json_values)
    return doc


# --- text and bytes --------------------------------------------------------------------------


@FUZZ
@given(text_or_bytes)
def test_loads_json(data):
    expect_only((FormatError,), protocol.loads_json, data)


@FUZZ
@given(text_or_bytes)
def test_parse_metadata_document_bytes(data):
    expect_only((FormatError,), protocol.parse_metadata_document, data)


@FUZZ
@given(text_or_bytes)
def test_unwrap_ocs_metadata(data):
    expect_only((FormatError,), protocol.unwrap_ocs_metadata, data)


@FUZZ
@given(
    st.one_of(
        st.text(max_size=200),
        st.lists(b64_text, max_size=4).map("|".join),
        st.lists(b64_text, max_size=4).map("fA==".join),
        json_values,
    )
)
def test_parse_wrapped_private_key(text):
    expect_only((FormatError,), protocol.parse_wrapped_private_key, text)


@settings(max_examples=5, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=64), min_size=3, max_size=3))
def test_unwrap_private_key_random_parts(parts):
    text = "|".join(protocol.b64encode(p) for p in parts)
    expect_only((FormatError, WrongMnemonic), crypto.unwrap_private_key, text, "a b c")


@FUZZ
@given(text_or_bytes)
def test_key_and_certificate_loaders(data):
    for loader in (crypto.load_certificate, crypto.load_private_key, crypto.load_public_key):
        expect_only((FormatError,), loader, data)


@FUZZ
@given(st.binary(max_size=400))
def test_cms_verify_random_bytes(data):
    expect_only((MetadataSignatureError,), crypto.verify_detached, b"content", data)


@FUZZ
@given(json_values, st.one_of(st.none(), st.text(max_size=100), b64_text))
def test_verify_metadata_signature_random(doc, signature):
    if not isinstance(doc, dict):
        doc = {"x": doc}
    expect_only((MetadataSignatureError,), crypto.verify_metadata_signature, doc, signature)


@FUZZ
@given(st.binary(max_size=300))
def test_gunzip_random(data):
    expect_only((FormatError,), gunzip, data)


@FUZZ
@given(st.binary(max_size=300), st.binary(min_size=8, max_size=32))
def test_aead_random(data, nonce):
    expect_only((DecryptionError,), crypto.aead.decrypt, crypto.FileSecret(KEY, nonce), data)


@FUZZ
@given(st.binary(max_size=300))
def test_rsa_unwrap_random(data):
    expect_only((KeyUnwrapError,), crypto.rsa_unwrap, _key(), data)


def _key():
    return crypto.load_private_key((WEB / "admin.private-key.DERIVED.pem").read_text())


# --- random and mutated JSON -----------------------------------------------------------------


PARSERS = [
    protocol.parse_metadata_v2,
    protocol.parse_metadata_v1,
    protocol.parse_folder_metadata,
    protocol.parse_filedrop_entry,
    lambda obj: protocol.parse_file_entry(obj, "f"),
    lambda obj: protocol.parse_encrypted_blob(obj, "b"),
    protocol.normalise_version,
]


@FUZZ
@given(json_values)
def test_every_parser_on_random_json(obj):
    for parser in PARSERS:
        expect_only((FormatError,), parser, obj)
    expect_only((FormatError,), protocol.parse_metadata_document, json.dumps(obj))


@FUZZ
@given(mutated(ROOT_DOC))
def test_mutated_v2_document(doc):
    expect_only((FormatError,), protocol.parse_metadata_document, json.dumps(doc))


@FUZZ
@given(mutated(V1_DOC))
def test_mutated_v1_document(doc):
    try:
        parsed = protocol.parse_metadata_document(json.dumps(doc))
    except FormatError:
        return
    if isinstance(parsed, protocol.MetadataDocumentV1):
        expect_only(
            (FormatError, IntegrityError), crypto.decrypt_metadata_v1, parsed, metadata_key=KEY
        )


@FUZZ
@given(mutated(ROOT_INNER))
def test_mutated_inner_metadata_through_decryption(inner):
    """Authentic (correctly encrypted) but malformed inner JSON still yields only FormatError."""
    blob = crypto.metadata._seal(KEY, b"n" * 12, inner)
    expect_only((FormatError,), crypto.decrypt_folder_metadata, blob, KEY)


@FUZZ
@given(mutated(FILEDROP))
def test_mutated_filedrop_entry(entry):
    try:
        parsed = protocol.parse_filedrop_entry(entry)
    except FormatError:
        return
    expect_only(
        (FormatError, IntegrityError), crypto.open_filedrop_entry, parsed, "android3", _key()
    )


@FUZZ
@given(st.binary(max_size=200))
def test_random_gzip_payload_inside_valid_encryption(payload):
    data = crypto.aead.encrypt(crypto.FileSecret(KEY, b"n" * 12), gzip.compress(payload))
    blob = protocol.EncryptedBlob(data, b"n" * 12, data[-16:])
    expect_only((FormatError,), crypto.decrypt_folder_metadata, blob, KEY)


def test_non_ascii_digit_key_index_is_a_format_error():
    doc = {"metadata": {"metadataKeys": {"²": "QUJD"}, "version": 1}, "files": {}}
    expect_only((FormatError,), protocol.parse_metadata_v1, doc)
    try:
        protocol.parse_metadata_v1(doc)
    except FormatError:
        return
    raise AssertionError("accepted a non-ASCII index")
