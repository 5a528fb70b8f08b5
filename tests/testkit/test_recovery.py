"""Our own client against every fault the test kit injects, on one ephemeral stack (the pytest
plugin's fixtures): it fails cleanly or retries, aborts its lock, resumes — and nothing is lost
or left behind: the folder lists what it listed before, no staged blob or lock remains, a retry
succeeds and reads back the same bytes. Every fault that fires is in the audit log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from client.api import ServerApi
from client.errors import E2EEError
from client.ops.transaction import Transaction
from client.ops.transfer import upload_into
from client.ops.tree import locate
from server.testkit.pytest_plugin import ClientDevice

pytestmark = pytest.mark.e2e

E2EE = Path(sys.executable).with_name("e2ee")
MIB = 1 << 20


def ok(device: ClientDevice, *args: str | Path):
    result = device.run(*args)
    assert result.exit_code == 0, (args, result.stderr, result.exception)
    return result


def fails(device: ClientDevice, *args: str | Path) -> str:
    result = device.run(*args)
    assert result.exit_code == 1, (args, result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def names(device: ClientDevice, folder: str = "Vault") -> list[str]:
    return sorted(e["name"] for e in json.loads(ok(device, "--json", "ls", folder).stdout))


def write(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def stored(device: ClientDevice) -> dict[str, int]:
    """What the server holds: this user's file rows (staged ones included) and locks, and
    the blob files on disk (a failed upload must not leave ciphertext behind)."""
    server, uid = device.server, device.user.id
    files = server.query(
        "SELECT COUNT(*) FROM files_node n JOIN accounts_user u ON n.owner_id = u.id "
        "WHERE u.username = %s AND n.kind = %s",
        (uid, "file"),
    )[0][0]
    locks = server.query(
        "SELECT COUNT(*) FROM e2ee_lock l JOIN accounts_user u ON l.user_id = u.id "
        "WHERE u.username = %s",
        (uid,),
    )[0][0]
    blobs = sum(1 for p in (server.data_dir / "blobs").rglob("*") if p.is_file())
    return {"files": files, "locks": locks, "blobs": blobs}


def fired(device: ClientDevice, kind: str) -> int:
    rows = device.server.query(
        "SELECT details FROM audit_auditevent WHERE action = %s", ("testkit.fault_fired",)
    )
    details = [json.loads(d) if isinstance(d, str) else d for (d,) in rows]
    return sum(1 for d in details if d["fault"] == kind and d["user"] == device.user.id)


def round_trip(device: ClientDevice, remote: str, local: Path, tmp_path: Path) -> None:
    back = tmp_path / ("back-" + local.name)
    ok(device, "get", remote, back)
    assert back.read_bytes() == local.read_bytes()


@pytest.fixture
def vault(e2ee_client: ClientDevice, tmp_path: Path) -> ClientDevice:
    """An encrypted folder with one file in it."""
    ok(e2ee_client, "encrypt", "Vault")
    ok(e2ee_client, "put", write(tmp_path / "first.bin", 1000), "Vault/")
    return e2ee_client


def second_device(device: ClientDevice, tmp_path: Path) -> ClientDevice:
    other = ClientDevice.create(device.server, device.user, tmp_path / "phone", keys=False)
    words = tmp_path / "words"
    words.write_text(device.mnemonic)
    ok(other, "add-device", "--mnemonic-file", words)
    return other


def test_lock_423_is_waited_out(vault, e2ee_faults, tmp_path):
    e2ee_faults.lock_423(count=2, user=vault.user.id)
    new = write(tmp_path / "second.bin", 3000)
    ok(vault, "put", new, "Vault/")  # two 423s, then the lock
    assert names(vault) == ["first.bin", "second.bin"]
    round_trip(vault, "Vault/second.bin", new, tmp_path)
    assert fired(vault, "lock-423") == 2


def test_a_lock_that_stays_taken_fails_cleanly_after_the_wait(
    vault, e2ee_faults, tmp_path, monkeypatch
):
    monkeypatch.setenv("E2EE_LOCK_WAIT", "1")
    before, held = names(vault), stored(vault)
    e2ee_faults.lock_423(count=100, user=vault.user.id)
    new = write(tmp_path / "second.bin", 3000)
    started = time.monotonic()
    message = fails(vault, "put", new, "Vault/")
    assert 1.0 <= time.monotonic() - started < 10
    assert "locked by another client" in message and "waited 1 s" in message
    assert "try again" in message
    assert names(vault) == before and stored(vault) == held
    assert 2 <= fired(vault, "lock-423") < 10
    e2ee_faults.clear()
    ok(vault, "put", new, "Vault/")
    round_trip(vault, "Vault/second.bin", new, tmp_path)


def test_a_write_waits_for_another_device_s_lock_and_keeps_both_changes(vault, tmp_path):
    """The phone holds the lock and commits a file while the laptop's put waits; the laptop
    then works on the metadata the phone wrote (a fresh counter), so both files are there."""
    phone = second_device(vault, tmp_path)
    from_phone, from_laptop = write(tmp_path / "phone.bin", 2000), write(tmp_path / "l.bin", 3000)
    with phone.session() as session:
        root = locate(session, "Vault").folder
        assert root is not None
        with Transaction(session, root) as tx:
            upload_into(tx, root, from_phone, "phone.bin")
            laptop = subprocess.Popen(
                [str(E2EE), "put", str(from_laptop), "Vault/laptop.bin"],
                env={**os.environ, "E2EE_CONFIG_DIR": str(vault.config_dir)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            time.sleep(2)  # the laptop has met the lock by now
            assert laptop.poll() is None, laptop.communicate()
    _, errors = laptop.communicate(timeout=60)
    assert laptop.returncode == 0, errors
    assert names(phone) == ["first.bin", "laptop.bin", "phone.bin"]
    round_trip(phone, "Vault/laptop.bin", from_laptop, tmp_path)
    round_trip(vault, "Vault/phone.bin", from_phone, tmp_path)


def test_metadata_500_aborts_the_lock_and_stores_nothing(vault, e2ee_faults, tmp_path):
    before, held = names(vault), stored(vault)
    e2ee_faults.metadata_500(user=vault.user.id)
    new = write(tmp_path / "second.bin", 5000)
    assert "HTTP 500" in fails(vault, "put", new, "Vault/")
    # the uploaded blob was staged under the lock; the client's abort reverted it
    assert names(vault) == before and stored(vault) == held
    ok(vault, "put", new, "Vault/")  # no lock was left behind: no 423
    round_trip(vault, "Vault/second.bin", new, tmp_path)
    assert fired(vault, "metadata-500") == 1


def test_connection_dropped_mid_upload(vault, e2ee_faults, tmp_path):
    before, held = names(vault), stored(vault)
    e2ee_faults.drop_upload(after_bytes=MIB, user=vault.user.id)
    big = write(tmp_path / "big.bin", 3 * MIB)
    assert "cannot reach the server" in fails(vault, "put", big, "Vault/")
    assert names(vault) == before and stored(vault) == held
    ok(vault, "put", big, "Vault/")
    round_trip(vault, "Vault/big.bin", big, tmp_path)
    assert fired(vault, "drop-upload") == 1


def test_sync_resumes_after_a_dropped_upload(vault, e2ee_faults, tmp_path):
    local = tmp_path / "laptop"
    local.mkdir()
    for n in range(6):
        write(local / f"f{n}.bin", 20_000 + n)
    e2ee_faults.drop_upload(after_bytes=10_000, user=vault.user.id)
    assert "cannot reach the server" in fails(vault, "sync", local, "Vault")
    ok(vault, "sync", local, "Vault")  # resumes: whatever committed stays, the rest goes up
    phone = second_device(vault, tmp_path)
    mirror = tmp_path / "phone-copy"
    mirror.mkdir()
    ok(phone, "sync", mirror, "Vault")
    for n in range(6):
        assert (mirror / f"f{n}.bin").read_bytes() == (local / f"f{n}.bin").read_bytes()
    assert stored(vault)["locks"] == 0


def test_a_lock_expired_under_the_client_loses_nothing(vault, e2ee_faults, tmp_path):
    before, held = names(vault), stored(vault)
    new = write(tmp_path / "second.bin", 4000)
    with vault.session() as session:
        root = locate(session, "Vault").folder
        assert root is not None
        with pytest.raises(E2EEError), Transaction(session, root) as tx:
            upload_into(tx, root, new, "second.bin")
            # as if the client then stalled for 24 h: the hourly rollback runs
            assert e2ee_faults.expire_lock(root.file_id) == [root.file_id]
    assert names(vault) == before and stored(vault) == held
    ok(vault, "put", new, "Vault/")
    round_trip(vault, "Vault/second.bin", new, tmp_path)


def test_a_crashed_client_s_lock_expires_and_every_device_carries_on(
    vault, e2ee_faults, tmp_path, monkeypatch
):
    """A client killed while it holds the lock: its other device is refused (423) until the
    lock expires; after that both write again, and the killed run's file never appears."""
    phone = second_device(vault, tmp_path)
    # the metadata PUT waits long enough to kill the client while it holds the lock
    e2ee_faults.delay(
        10.0, method="PUT", path="/ocs/v2.php/apps/end_to_end_encryption/", user=vault.user.id
    )
    doomed = write(tmp_path / "doomed.bin", 2000)
    with subprocess.Popen(
        [str(E2EE), "put", str(doomed), "Vault/"],
        env={**os.environ, "E2EE_CONFIG_DIR": str(vault.config_dir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as crashed:
        deadline = time.monotonic() + 60
        while e2ee_faults.armed() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not e2ee_faults.armed(), "the client never reached its metadata upload"
        crashed.kill()
    assert stored(vault)["locks"] == 1
    from_phone = write(tmp_path / "from-phone.bin", 3000)
    monkeypatch.setenv("E2EE_LOCK_WAIT", "1")  # the dead client's lock outlasts any wait
    assert "locked by another client" in fails(phone, "put", from_phone, "Vault/")
    root_id = locate_root(vault)
    assert e2ee_faults.expire_lock(root_id) == [root_id]
    ok(phone, "put", from_phone, "Vault/")
    later = write(tmp_path / "later.bin", 1500)
    ok(vault, "put", later, "Vault/")  # the killed run's stale token is dropped first
    assert names(vault) == ["first.bin", "from-phone.bin", "later.bin"]
    round_trip(phone, "Vault/later.bin", later, tmp_path)
    time.sleep(10)  # the delayed PUT now runs with the dead token: it must change nothing
    assert names(phone) == ["first.bin", "from-phone.bin", "later.bin"]
    assert stored(vault)["locks"] == 0
    assert fired(vault, "delay") == 1


def locate_root(device: ClientDevice) -> int:
    with device.session() as session:
        folder = locate(session, "Vault").folder
        assert folder is not None
        return folder.file_id


def test_delays_slow_the_client_down_without_losing_anything(vault, e2ee_faults, tmp_path):
    e2ee_faults.delay(0.5, count=4, user=vault.user.id)
    new = write(tmp_path / "slow.bin", 2000)
    started = time.monotonic()
    ok(vault, "put", new, "Vault/")
    assert time.monotonic() - started >= 2.0
    assert not e2ee_faults.armed()
    round_trip(vault, "Vault/slow.bin", new, tmp_path)
    assert fired(vault, "delay") == 4


def test_a_client_timeout_on_a_delayed_metadata_put_aborts_cleanly(vault, e2ee_faults, tmp_path):
    before, held = names(vault), stored(vault)
    e2ee_faults.delay(
        2.0, method="PUT", path="/ocs/v2.php/apps/end_to_end_encryption/", user=vault.user.id
    )
    new = write(tmp_path / "late.bin", 2000)
    with vault.session() as session:
        session.api.close()
        session.api = ServerApi(
            vault.server.url, vault.user.id, vault.user.app_password, timeout=0.5
        )
        root = locate(session, "Vault").folder
        assert root is not None
        with (
            pytest.raises(E2EEError, match="cannot reach the server"),
            Transaction(session, root) as tx,
        ):
            upload_into(tx, root, new, "late.bin")
    time.sleep(2.5)  # the delayed PUT arrives after the abort, with a token that is gone
    assert names(vault) == before and stored(vault) == held
    ok(vault, "put", new, "Vault/")
    round_trip(vault, "Vault/late.bin", new, tmp_path)
