"""THREATS.md C1–C8: file content, against a malicious server (one stack, one proxy)."""

from __future__ import annotations

import json
import re

import pytest

from client.protocol import MetadataDocumentV2, parse_metadata_document
from tests.hostile.proxy import Exchange, edit_body

pytestmark = [pytest.mark.hostile, pytest.mark.e2e]

MIB = 1 << 20


@pytest.fixture(scope="module")
def alice(make_device):
    device = make_device("calice")
    device.init()
    return device


def uuid_of(device, proxy, root: str, filename: str) -> str:
    from client import crypto

    device.ok("ls", root)
    text, _ = proxy.metadata_served(device.root_id(root))[-1]
    doc = parse_metadata_document(text)
    assert isinstance(doc, MetadataDocumentV2)
    key = crypto.unwrap_metadata_key(doc, device.user, device.private_key)
    inner = crypto.decrypt_folder_metadata(doc.metadata, key)
    return next(u for u, e in inner.files.items() if e.filename == filename)


def blob_rule(uuid: str, edit):
    return edit_body("GET", f"/{uuid}", edit)


def no_partial_files(directory) -> bool:
    return not [p for p in directory.iterdir() if p.name.endswith(".part")]


@pytest.fixture(scope="module")
def stored(alice, proxy, tmp_path_factory):
    """C/ with small.txt, big.bin (3 MiB + 5) and twin.txt (same size as small.txt)."""
    base = tmp_path_factory.mktemp("c")
    alice.ok("encrypt", "C")
    small = base / "small.txt"
    small.write_bytes(b"small secret body 1")
    twin = base / "twin.txt"
    twin.write_bytes(b"other secret body 2")
    big = base / "big.bin"
    big.write_bytes(bytes(range(256)) * (3 * MIB // 256) + b"tail!")
    for path in (small, twin, big):
        alice.ok("put", path, "C/")
    return {p.name: p for p in (small, twin, big)}


def assert_refused(alice, remote, out, keep: bytes, expected: str = "DecryptionError"):
    """exit 3, one line naming the refusal; previous local version intact, no partial file."""
    out.write_bytes(keep)
    result = alice.fails(3, "get", remote, out)
    assert expected in result.stderr, result.stderr
    assert out.read_bytes() == keep  # the previous local version is intact
    assert no_partial_files(out.parent)


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x80]) + data[at + 1 :]


def test_C1_no_key_nonce_reuse_across_versions(alice, proxy, tmp_path):
    alice.ok("encrypt", "C1")
    note = tmp_path / "note.txt"
    keys = []
    for version in range(4):
        note.write_text(f"version {version}")
        mark = proxy.mark()
        alice.ok("put", note, "C1/")
        keys.append(uuid_of(alice, proxy, "C1", "note.txt"))
        assert proxy.metadata_uploads(mark)
    alice.ok("mv", "C1/note.txt", "C1/renamed.txt")
    assert len(set(keys)) == 4  # a new blob (fresh key, fresh nonce) per version
    # I5 (after the test) opens every archived version and compares (key, nonce) pairs


C2_VARIANTS = {
    "first block": lambda d: flip(d, 0),
    "middle block": lambda d: flip(d, len(d) // 2),
    "tag": lambda d: flip(d, len(d) - 1),
}


@pytest.mark.parametrize("variant", sorted(C2_VARIANTS))
def test_C2_malleated_ciphertext(alice, proxy, stored, tmp_path, variant):
    uuid = uuid_of(alice, proxy, "C", "small.txt")
    alice.ok("get", "C/small.txt", tmp_path / "twin-out")  # honest twin
    with proxy.attack(response=blob_rule(uuid, C2_VARIANTS[variant])):
        assert_refused(alice, "C/small.txt", tmp_path / "small.txt", b"previous version", "Error")


C3_VARIANTS = {
    "tag stripped": lambda d: d[:-16],
    "tag shortened to 4 bytes": lambda d: d[:-12],
    "embedded tag differs from metadata": lambda d: d[:-16] + bytes(16),
}


@pytest.mark.parametrize("variant", sorted(C3_VARIANTS))
def test_C3_tag_handling(alice, proxy, stored, tmp_path, variant):
    uuid = uuid_of(alice, proxy, "C", "small.txt")
    with proxy.attack(response=blob_rule(uuid, C3_VARIANTS[variant])):
        assert_refused(alice, "C/small.txt", tmp_path / "small.txt", b"keep", "Error")


C4_VARIANTS = {
    "truncated at a chunk boundary": lambda d: d[: 2 * MIB],
    "final chunk dropped": lambda d: d[: 3 * MIB] + d[-16:],
    "chunks reordered": lambda d: d[MIB : 2 * MIB] + d[:MIB] + d[2 * MIB :],
    "chunk appended": lambda d: d + d[:MIB],
    "spliced from another file": lambda d: d[:MIB] + bytes(MIB) + d[2 * MIB :],
}


@pytest.mark.parametrize("variant", sorted(C4_VARIANTS))
def test_C4_chunk_reorder_truncate_splice(alice, proxy, stored, tmp_path, variant):
    uuid = uuid_of(alice, proxy, "C", "big.bin")
    with proxy.attack(response=blob_rule(uuid, C4_VARIANTS[variant])):
        assert_refused(alice, "C/big.bin", tmp_path / "big.bin", b"keep", "Error")
    alice.ok("get", "C/big.bin", tmp_path / "big.bin")  # twin
    assert (tmp_path / "big.bin").read_bytes() == stored["big.bin"].read_bytes()


def test_C5_ciphertext_swap_between_files(alice, proxy, stored, tmp_path):
    small = uuid_of(alice, proxy, "C", "small.txt")
    twin = uuid_of(alice, proxy, "C", "twin.txt")
    bodies = {}

    def capture(exchange: Exchange) -> None:
        for uuid in (small, twin):
            if exchange.method == "GET" and exchange.path.endswith(uuid):
                bodies[uuid] = exchange.response_body

    with proxy.attack(response=capture):
        alice.ok("get", "C/small.txt", tmp_path / "a")
        alice.ok("get", "C/twin.txt", tmp_path / "b")
    assert len(bodies[small]) == len(bodies[twin])

    def swap(exchange: Exchange) -> None:
        if exchange.method == "GET" and exchange.path.endswith(small):
            exchange.response_body = bodies[twin]
        elif exchange.method == "GET" and exchange.path.endswith(twin):
            exchange.response_body = bodies[small]

    with proxy.attack(response=swap):
        assert_refused(alice, "C/small.txt", tmp_path / "small.txt", b"keep", "Error")
        assert_refused(alice, "C/twin.txt", tmp_path / "twin.txt", b"keep", "Error")


def test_C6_single_file_rollback(alice, proxy, tmp_path):
    alice.ok("encrypt", "C6")
    doc = tmp_path / "doc.txt"
    doc.write_text("version one")
    mark = proxy.mark()
    alice.ok("put", doc, "C6/")
    old_blob = next(e.request_body for e in proxy.requests_to("PUT", "/C6/", mark))
    doc.write_text("version two")
    alice.ok("put", doc, "C6/")
    current = uuid_of(alice, proxy, "C6", "doc.txt")
    with proxy.attack(response=blob_rule(current, lambda _: old_blob)):
        assert_refused(alice, "C6/doc.txt", tmp_path / "doc.txt", b"keep", "Error")
    alice.ok("get", "C6/doc.txt", tmp_path / "doc.txt")
    assert (tmp_path / "doc.txt").read_text() == "version two"


def test_C7_injected_unreferenced_blob(alice, proxy, stored, tmp_path):
    small = uuid_of(alice, proxy, "C", "small.txt")
    planted = "f" * 32

    def inject(exchange: Exchange) -> None:
        if exchange.method != "PROPFIND" or not exchange.path.rstrip("/").endswith("/C"):
            return
        body = exchange.response_body.decode()
        match = re.search(
            r"<d:response>(?:(?!</d:response>).)*" + small + r".*?</d:response>", body, re.S
        )
        if match:
            exchange.response_body = body.replace(
                "</d:multistatus>", match.group(0).replace(small, planted) + "</d:multistatus>"
            ).encode()

    local = tmp_path / "sync"
    local.mkdir()
    with proxy.attack(response=inject):
        listed = {i["name"] for i in json.loads(alice.ok("--json", "ls", "C").stdout)}
        alice.ok("sync", local, "C")
    assert listed == {"small.txt", "twin.txt", "big.bin"}
    assert {p.name for p in local.iterdir()} == {"small.txt", "twin.txt", "big.bin"}


def test_C8_encrypted_folder_reported_plain(alice, proxy, stored, tmp_path):
    def plain(exchange: Exchange) -> None:
        if exchange.method == "PROPFIND" and exchange.path.rstrip("/").endswith("/C"):
            exchange.response_body = re.sub(
                rb"(<[\w.-]+:is-encrypted[^>]*>)1<", rb"\g<1>0<", exchange.response_body
            )

    with proxy.attack(response=plain):
        mark = proxy.mark()
        assert "PlaintextInEncryptedFolderError" in alice.fails(3, "ls", "C").stderr
        result = alice.fails(3, "put", alice.secret_file(tmp_path, "c8"), "C/")
        assert "PlaintextInEncryptedFolderError" in result.stderr
    assert proxy.requests_to("PUT", "/remote.php/dav/", mark) == []
    alice.ok("ls", "C")  # twin
