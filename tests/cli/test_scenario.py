"""The whole story on one fresh stack with its signing worker (issue 6, item 4): alice with
two devices, bob; wrong mnemonic refused; two devices syncing one folder converge; share and
unshare, and bob cannot read what is written after his removal; an interrupted download leaves
nothing; and at the end no plaintext file name, folder name, content or mnemonic anywhere in
the server's database, blob store or logs.

"Mnemonic anywhere" is checked as the phrase, its password form and every pair of adjacent
words: single BIP-39 words ("issue", "record", …) are ordinary English that server logs and
audit action names contain legitimately.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest

from client import crypto
from client.api import ServerApi
from client.errors import OwnEntryMissingError
from client.protocol import parse_metadata_document
from tests.certificates.workers import signing_stack
from tests.cli.conftest import E2EE
from tests.softhsm import softhsm  # noqa: F401 - fixture

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm, pytest.mark.redis, pytest.mark.worker]


@pytest.fixture(scope="module")
def stack(softhsm):  # noqa: F811 - the fixture imported above
    """This story runs on the real thing: gunicorn, a Celery signing worker on Redis holding a
    SoftHSM CA key, and the stack's own database (PostgreSQL when DATABASE_URL says so)."""
    with signing_stack(softhsm, timeout=30.0) as signing:
        signing.worker.start()
        yield signing.stack


TAG = secrets.token_hex(4)
NAMES = [f"plainname-{TAG}-{i}.txt" for i in range(3)] + [f"plaindir-{TAG}"]
CONTENT = f"plaincontent-{TAG}-".encode() * 64


def server_bytes(stack) -> list[tuple[str, bytes]]:
    """Everything the server holds: every file of its data dir (SQLite database, blobs, logs)
    and, on PostgreSQL, every row of every table as text."""
    found = [(str(p), p.read_bytes()) for p in Path(stack.data_dir).rglob("*") if p.is_file()]
    if stack.database.is_postgres:
        tables = stack.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        for (table,) in tables:
            rows = stack.query(f'SELECT t::text FROM "{table}" t')
            found.append((f"table {table}", "\n".join(r[0] for r in rows).encode()))
    return found


def mnemonic_forms(words: list[str]) -> list[str]:
    forms = [" ".join(words), "".join(words)]
    forms += [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    forms += [f"{a}{b}" for a, b in zip(words, words[1:], strict=False)]
    return forms


def test_the_whole_story(make_device, tmp_path):
    words_file = tmp_path / "alice.words"
    laptop = make_device("alice")
    laptop.ok("init", "--mnemonic-out", words_file)
    words = words_file.read_text().split()
    phone = make_device("alice", "phone")
    wrong = tmp_path / "wrong.words"
    wrong.write_text(" ".join(reversed(words)))
    assert "WrongMnemonic" in phone.fails(3, "add-device", "--mnemonic-file", wrong).stderr
    phone.ok("add-device", "--mnemonic-file", words_file)
    bob = make_device("bob")
    bob.ok("init", "--mnemonic-out", tmp_path / "bob.words")
    bob_words = (tmp_path / "bob.words").read_text().split()

    # two devices of alice sync one folder and converge
    laptop.ok("encrypt", "Shared")
    a, b = tmp_path / "laptop", tmp_path / "phone"
    (a / NAMES[3]).mkdir(parents=True)
    b.mkdir()
    (a / NAMES[0]).write_bytes(CONTENT)
    (a / NAMES[3] / NAMES[1]).write_bytes(CONTENT + b"1")
    laptop.ok("sync", a, "Shared")
    phone.ok("sync", b, "Shared")
    (b / NAMES[3] / NAMES[2]).write_bytes(CONTENT + b"2")
    phone.ok("sync", b, "Shared")
    laptop.ok("sync", a, "Shared")
    assert sorted(p.relative_to(a) for p in a.rglob("*")) == sorted(
        p.relative_to(b) for p in b.rglob("*")
    )

    # share with bob; he reads; unshare; he cannot read what comes after
    laptop.ok("share", "Shared", "bob")
    out = tmp_path / "bob-got"
    bob.ok("get", f"Shared/{NAMES[3]}/{NAMES[2]}", out)
    assert out.read_bytes() == CONTENT + b"2"
    bob_key = crypto.load_private_key((bob.config / "private-key.pem").read_bytes())
    laptop.ok("unshare", "Shared", "bob")
    later = tmp_path / "later.txt"
    later.write_bytes(CONTENT + b"later")
    laptop.ok("put", later, f"Shared/{NAMES[3]}/")
    bob.fails(2, "ls", "Shared")
    root_id = json.loads((laptop.config / "folders.json").read_text())["roots"]["Shared"]
    with ServerApi(laptop.stack.base_url, laptop.user, laptop.password) as api:
        document = parse_metadata_document(api.metadata(root_id)[0])
    with pytest.raises(OwnEntryMissingError):
        crypto.unwrap_metadata_key(document, "bob", bob_key)

    # an interrupted download leaves no file at the destination
    big = tmp_path / "big.bin"
    with big.open("wb") as handle:
        handle.truncate(600 << 20)
    laptop.ok("put", big, "Shared/")
    target = tmp_path / "download" / "big.bin"
    target.parent.mkdir()
    process = subprocess.Popen(
        [str(E2EE), "get", "Shared/big.bin", str(target)],
        env={**os.environ, **laptop.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not list(target.parent.glob(".big.bin.*")):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    assert process.returncode == 1
    assert list(target.parent.iterdir()) == []

    # nothing in clear on the server
    secrets_to_find = [n.encode() for n in NAMES] + [CONTENT[:40]]
    secrets_to_find += [f.encode() for f in mnemonic_forms(words) + mnemonic_forms(bob_words)]
    for where, data in server_bytes(laptop.stack):
        for secret in secrets_to_find:
            assert secret not in data, f"{secret[:30]!r} found in {where}"
    # twin: the scan does find what the server may know in clear
    everything = b"".join(data for _, data in server_bytes(laptop.stack))
    assert b"Shared" in everything and b"alice" in everything
