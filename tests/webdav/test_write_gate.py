"""The write-gate hook (settings.WEBDAV_WRITE_GATES) the E2EE app plugs into: gates can refuse
a write with a status, rename what is written (staging), or turn a DELETE into a MOVE."""

from __future__ import annotations

import pytest

from server.files.models import Node
from webdav.gates import GateRefused, WriteIntent

A = "/remote.php/dav/files/alice"
SEEN: list[WriteIntent] = []


def record(intent: WriteIntent) -> WriteIntent:
    SEEN.append(intent)
    return intent


def require_token(intent: WriteIntent) -> WriteIntent:
    """Like the E2EE gate: writes below a folder named 'locked' need the right e2e-token."""
    if intent.parent.name == "locked" or (intent.node is not None and intent.node.name == "locked"):
        token = intent.environ.get("HTTP_E2E_TOKEN")
        if token is None:
            raise GateRefused(403, "requires an e2e-token")
        if token != "right":
            raise GateRefused(423, "locked by another token")
    return intent


def stage(intent: WriteIntent) -> WriteIntent:
    """Like E2EE staging: PUT/MKCOL go to '<name>.e2e-to-save', DELETE becomes a MOVE."""
    if intent.operation in ("put", "mkcol"):
        return intent.replace(name=intent.name + ".e2e-to-save")
    if intent.operation == "delete":
        return intent.replace(operation="move", name=intent.name + ".e2e-to-delete")
    return intent


@pytest.fixture
def gates(settings):  # type: ignore[no-untyped-def]
    def use(*names: str) -> None:
        settings.WEBDAV_WRITE_GATES = [f"{__name__}.{name}" for name in names]

    SEEN.clear()
    return use


def test_every_write_method_passes_the_gate(alice, gates):
    gates("record")
    alice.request("MKCOL", A + "/d")
    alice.put(A + "/d/f", content=b"x")
    alice.request("COPY", A + "/d/f", headers={"Destination": "http://testserver" + A + "/c"})
    alice.request("MOVE", A + "/c", headers={"Destination": "http://testserver" + A + "/m"})
    alice.request("PROPPATCH", A + "/m", content=b"""<?xml version="1.0"?>
        <d:propertyupdate xmlns:d="DAV:"><d:set><d:prop>
        <d:lastmodified>5</d:lastmodified></d:prop></d:set></d:propertyupdate>""")
    alice.delete(A + "/m")
    assert [(i.operation, i.name) for i in SEEN] == [
        ("mkcol", "d"), ("put", "f"), ("copy", "c"), ("move", "m"), ("proppatch", "m"),
        ("delete", "m"),
    ]
    assert SEEN[1].parent.name == "d" and SEEN[1].node is None
    assert SEEN[3].node is not None and SEEN[3].node.name == "c"


def test_reads_do_not_pass_the_gate(alice, gates):
    alice.put(A + "/f", content=b"x")
    gates("record")
    alice.get(A + "/f")
    alice.request("PROPFIND", A + "/", headers={"Depth": "1"})
    assert SEEN == []


def test_gate_refusal_sets_the_status_and_writes_nothing(alice, gates, blob_dir):
    alice.request("MKCOL", A + "/locked")
    gates("require_token")
    assert alice.put(A + "/locked/f", content=b"x").status_code == 403
    assert alice.put(A + "/locked/f", content=b"x",
                     headers={"e2e-token": "wrong"}).status_code == 423
    assert alice.request("MKCOL", A + "/locked/sub").status_code == 403
    assert alice.delete(A + "/locked").status_code == 403
    assert set(Node.objects.values_list("name", flat=True)) == {"", "locked"}
    assert not [p for p in blob_dir.rglob("*") if p.is_file()]


def test_gate_lets_the_right_token_through(alice, gates):  # positive twin
    alice.request("MKCOL", A + "/locked")
    gates("require_token")
    assert alice.put(A + "/locked/f", content=b"x",
                     headers={"e2e-token": "right"}).status_code == 201
    assert alice.put(A + "/elsewhere", content=b"x").status_code == 201


def test_gate_can_stage_writes_under_another_name(alice, gates):
    gates("stage")
    assert alice.put(A + "/f.bin", content=b"ciphertext").status_code == 201
    assert alice.request("MKCOL", A + "/sub").status_code == 201
    names = set(Node.objects.values_list("name", flat=True))
    assert names == {"", "f.bin.e2e-to-save", "sub.e2e-to-save"}


def test_gate_can_turn_a_delete_into_a_move(alice, gates):
    alice.put(A + "/f.bin", content=b"ciphertext")
    gates("stage")
    assert alice.delete(A + "/f.bin").status_code == 204
    node = Node.objects.get(kind="file")
    assert node.name == "f.bin.e2e-to-delete"
