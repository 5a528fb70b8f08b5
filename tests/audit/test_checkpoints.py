"""Signed checkpoints catch what the bare chain cannot: a rewrite that recomputes every hash,
and a log cut short."""

import io

import pytest
from cryptography.hazmat.primitives import serialization
from django.core.management import call_command
from django.core.management.base import CommandError

from hsm.software import SoftwareSigner
from server.audit.chain import GENESIS
from server.audit.checkpoints import checkpoint_sign, checkpoints_verify
from server.audit.models import AuditCheckpoint, AuditEvent
from server.audit.services import audit_record, audit_verify, recompute_hash
from tests.audit.test_chain import raw

TABLE = AuditEvent._meta.db_table


@pytest.fixture
def signer(tmp_path):
    return SoftwareSigner.create(tmp_path / "ca.pem")


@pytest.fixture
def server_key_file(signer, tmp_path):
    path = tmp_path / "server-key.pem"
    path.write_bytes(
        signer.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


@pytest.fixture
def signed_log(db, signer):
    for n in range(5):
        audit_record(actor=f"user{n}", action="test.event", target=f"folder:{n}", outcome="success")
    return checkpoint_sign(signer=signer)


def verify(server_key_file):
    out = io.StringIO()
    call_command("audit", "verify", "--server-key", str(server_key_file), stdout=out)
    return out.getvalue()


def rewrite_from(seq: int, **changes):
    """What an attacker with the database (not the CA key) can do: change an event and recompute
    every hash after it, so the bare chain verifies again."""
    raw(f"UPDATE {TABLE} SET actor = %s WHERE seq = %s", [changes["actor"], seq])
    prev = AuditEvent.objects.get(seq=seq - 1).hash if seq > 1 else GENESIS
    for event in AuditEvent.objects.filter(seq__gte=seq).order_by("seq"):
        new = recompute_hash(event, prev_hash=prev)
        raw(f"UPDATE {TABLE} SET prev_hash = %s, hash = %s WHERE seq = %s", [prev, new, event.seq])
        prev = new


def test_checkpoint_of_an_intact_log(signed_log, signer, server_key_file):
    assert signed_log.seq == 5 and signed_log.head_hash == AuditEvent.objects.get(seq=5).hash
    assert checkpoints_verify(public_key=signer.public_key()) == (1, None)
    assert "5 event(s), 1 signed checkpoint(s)" in verify(server_key_file)
    assert checkpoint_sign(signer=signer) is None  # nothing new to sign
    audit_record(actor="x", action="test.more", outcome="success")
    assert checkpoint_sign(signer=signer).seq == 6


def test_recomputed_rewrite_passes_the_chain_but_not_the_checkpoint(signed_log, server_key_file):
    rewrite_from(2, actor="someone else")
    assert audit_verify() == (5, None)
    with pytest.raises(CommandError, match="checkpoint at #5: .*history was rewritten"):
        verify(server_key_file)


def test_cut_tail_is_caught(signed_log, server_key_file):
    raw(f"DELETE FROM {TABLE} WHERE seq >= 4")
    assert audit_verify() == (3, None)
    with pytest.raises(CommandError, match="cut short"):
        verify(server_key_file)


def test_checkpoint_signed_by_another_key_is_refused(signed_log, tmp_path, server_key_file):
    forger = SoftwareSigner.create(tmp_path / "forger.pem")
    audit_record(actor="x", action="test.more", outcome="success")
    checkpoint_sign(signer=forger)
    with pytest.raises(CommandError, match="signature does not verify"):
        verify(server_key_file)
    assert AuditCheckpoint.objects.count() == 2


def test_checkpoints_run_on_the_signing_worker_queue(settings):
    assert settings.CELERY_TASK_ROUTES["audit.checkpoint"] == {"queue": "hsm"}
    assert settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]["task"] == "audit.checkpoint"


def test_admin_front_page_shows_counts_and_the_checkpoint(signed_log, django_user_model, client):
    admin = django_user_model.objects.create_superuser("root", "", "admin password 123")
    client.force_login(admin)
    page = client.get("/admin/").content.decode()
    assert "e2ee-dashboard" in page and "audit events" in page
    assert f"#{signed_log.seq}" in page
    # this test's CA key is not the server's: the page must say the checkpoint does not hold
    assert "signature verified" not in page
    assert "Site administration" in page or "Django administration" in page


def test_admin_front_page_verifies_a_checkpoint_of_the_servers_ca(
    db, settings, tmp_path, django_user_model, client
):
    from server.certificates.authority import ca_init
    from server.certificates.signing import signer_open

    settings.E2EE_CA_KEY_FILE = str(tmp_path / "ca.key.pem")
    ca_init(backend="software")
    audit_record(actor="x", action="test.event", outcome="success")
    checkpoint_sign(signer=signer_open("software"))
    client.force_login(django_user_model.objects.create_superuser("root", "", "admin pw 12345"))
    assert "signature verified" in client.get("/admin/").content.decode()
