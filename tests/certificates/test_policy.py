"""The issuance policy as the signing worker applies it (`issuance.order_fulfil`, the task's
body), run in-process on orders placed directly, so no check in the view can hide a gap."""

import secrets

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from hsm.signer import SignerError
from server.certificates import authority, issuance, services
from server.certificates.models import Certificate, CertificateOrder, RekeyRequest
from server.certificates.signing import signer_reset
from server.certificates.validation import csr_digest
from tests.e2ee.helpers import make_csr, make_ec_csr, make_key


@pytest.fixture
def software_ca(settings, tmp_path, db):
    settings.E2EE_SIGNER = "software"
    settings.E2EE_SIGNING = "worker"
    settings.E2EE_CA_KEY_FILE = str(tmp_path / "ca.key.pem")
    signer_reset()
    issuance._verified_in.clear()
    ca = authority.ca_init(backend="software")
    yield ca
    signer_reset()
    issuance._verified_in.clear()


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser("root", "", "pw")


def place(user, csr_pem, key_owner=None) -> CertificateOrder:
    """An order as the web process records it, but without the web's checks."""
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    return CertificateOrder.objects.create(
        user=user,
        key_owner=key_owner or user.username,
        csr_pem=csr_pem,
        csr_sha256=csr_digest(csr),
    )


def fulfil(order) -> CertificateOrder:
    issuance.order_fulfil(order_id=order.pk)
    order.refresh_from_db()
    return order


def test_worker_issues_a_certificate_signed_by_the_recorded_ca(software_ca, make_user):
    alice = make_user("alice")
    key = make_key()
    order = fulfil(place(alice, make_csr("alice", key)))
    assert order.status == "issued"
    cert = x509.load_pem_x509_certificate(order.certificate.pem.encode())
    ca_key = serialization.load_pem_public_key(software_ca.public_key_pem.encode())
    ca_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256())
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()


def test_fulfilling_twice_changes_nothing(software_ca, make_user):
    order = fulfil(place(make_user("alice"), make_csr("alice")))
    again = fulfil(order)
    assert again.certificate_id == order.certificate_id
    assert Certificate.objects.count() == 1
    assert issuance.order_fulfil(order_id=10**9) is None  # a vanished order is a no-op


def test_worker_refuses_cn_of_another_user(software_ca, make_user):
    alice = make_user("alice")
    refused = fulfil(place(alice, make_csr("bob"), key_owner="alice"))
    assert (refused.status, refused.refusal_status) == ("refused", 403)
    assert fulfil(place(alice, make_csr("alice"))).status == "issued"


def test_worker_refuses_small_and_non_rsa_keys(software_ca, make_user):
    alice = make_user("alice")
    assert fulfil(place(alice, make_csr("alice", make_key(1024)))).refusal_status == 400
    assert fulfil(place(alice, make_ec_csr("alice"))).refusal_status == 400
    assert fulfil(place(alice, make_csr("alice", make_key(2048)))).status == "issued"


def test_worker_refuses_a_key_certified_for_another_user(software_ca, make_user):
    key = make_key()
    assert fulfil(place(make_user("alice"), make_csr("alice", key))).status == "issued"
    refused = fulfil(place(make_user("bob"), make_csr("bob", key)))
    assert refused.status == "refused"
    assert "another user" in refused.refusal_message
    assert fulfil(place(refused.user, make_csr("bob"))).status == "issued"


def test_second_certificate_needs_an_approved_rekey(software_ca, make_user, admin):
    alice = make_user("alice")
    first = fulfil(place(alice, make_csr("alice")))
    refused = fulfil(place(alice, make_csr("alice")))
    assert (refused.status, refused.refusal_status) == ("refused", 409)

    request = services.rekey_request_create(
        key_owner="alice", requested_by=admin, reason="laptop stolen"
    )
    assert fulfil(place(alice, make_csr("alice"))).status == "refused"  # not approved yet
    services.rekey_request_approve(request_id=request.pk, admin=admin)
    replaced = fulfil(place(alice, make_csr("alice")))
    assert replaced.status == "issued"
    request.refresh_from_db()
    assert request.approved_by == admin and request.approved_at is not None
    assert request.consumed_by == replaced and request.reason == "laptop stolen"
    first.certificate.refresh_from_db()
    assert first.certificate.deleted_at is not None  # replaced, kept as history
    # the approval is spent: a third key needs a new one
    assert fulfil(place(alice, make_csr("alice"))).status == "refused"
    live = Certificate.objects.filter(key_owner="alice", deleted_at__isnull=True)
    assert list(live) == [replaced.certificate]


@pytest.mark.parametrize("gone", ["deleted", "revoked"])
def test_a_key_after_a_deleted_or_revoked_one_needs_an_approved_rekey(
    software_ca, make_user, admin, gone
):
    """DELETE public-key (or an admin's revocation) then a new CSR is still a key change."""
    alice = make_user("alice")
    first = fulfil(place(alice, make_csr("alice")))
    if gone == "deleted":
        services.certificate_delete(key_owner="alice")
    else:
        services.certificate_revoke(certificate_id=first.certificate.pk, admin=admin, reason="x")
    refused = fulfil(place(alice, make_csr("alice")))
    assert (refused.status, refused.refusal_status) == ("refused", 409)
    assert "had a certificate before" in refused.refusal_message
    request = services.rekey_request_create(key_owner="alice", requested_by=alice, reason="reset")
    services.rekey_request_approve(request_id=request.pk, admin=admin)
    issued = fulfil(place(alice, make_csr("alice")))  # twin: with the approval it is issued
    assert issued.status == "issued"
    request.refresh_from_db()
    assert request.consumed_by == issued


def test_non_admin_cannot_approve_a_rekey(software_ca, make_user, admin):
    alice = make_user("alice")
    request = services.rekey_request_create(key_owner="alice", requested_by=alice, reason="x")
    with pytest.raises(Exception, match="Only an admin"):
        services.rekey_request_approve(request_id=request.pk, admin=alice)
    assert services.rekey_request_approve(request_id=request.pk, admin=admin).approved_at


def test_worker_with_a_key_other_than_the_recorded_ca_refuses_to_sign(
    software_ca, make_user, settings, tmp_path
):
    from hsm.software import SoftwareSigner

    SoftwareSigner.create(tmp_path / "other.pem")
    settings.E2EE_CA_KEY_FILE = str(tmp_path / "other.pem")
    signer_reset()
    issuance._verified_in.clear()
    order = place(make_user("alice"), make_csr("alice"))
    with pytest.raises(SignerError, match="not the CA this server publishes"):
        issuance.order_fulfil(order_id=order.pk)
    order.refresh_from_db()
    assert order.status == "pending"  # kept for a worker with the right key
    settings.E2EE_CA_KEY_FILE = software_ca.location
    signer_reset()
    assert fulfil(order).status == "issued"


@pytest.mark.softhsm
def test_worker_signs_with_the_softhsm_ca(settings, softhsm, make_user, db):
    for name, value in softhsm.env("policy-" + secrets.token_hex(4)).items():
        if name.startswith("PKCS11_"):
            setattr(settings, name, value)
    settings.E2EE_SIGNER = "pkcs11"
    signer_reset()
    issuance._verified_in.clear()
    try:
        ca = authority.ca_init(backend="pkcs11")
        assert ca.backend == "pkcs11" and softhsm.pin not in ca.location
        with pytest.raises(SignerError, match="already recorded"):
            authority.ca_init(backend="pkcs11")
        order = fulfil(place(make_user("alice"), make_csr("alice")))
        cert = x509.load_pem_x509_certificate(order.certificate.pem.encode())
        ca_key = serialization.load_pem_public_key(ca.public_key_pem.encode())
        ca_key.verify(
            cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256()
        )
        status = authority.ca_status(check_key=True)
        assert (status.backend, status.issued, status.key_reachable) == ("pkcs11", 1, True)
    finally:
        signer_reset()
        issuance._verified_in.clear()


def test_rekey_request_is_recorded_with_reason(software_ca, admin):
    with pytest.raises(Exception, match="needs a reason"):
        services.rekey_request_create(key_owner="alice", requested_by=admin, reason=" ")
    made = services.rekey_request_create(key_owner="alice", requested_by=admin, reason="new phone")
    assert RekeyRequest.objects.get(pk=made.pk).requested_by == admin


def test_one_transaction_decides_a_batch_and_their_tasks_find_nothing_to_do(software_ca, make_user):
    from server.audit.models import AuditEvent
    from server.audit.services import audit_verify

    users = [make_user(f"batch{i}") for i in range(3)]
    key = make_key()
    orders = [place(user, make_csr(user.username)) for user in users]
    again = place(users[1], make_csr(users[1].username))  # a second CSR of one identity
    stolen = place(users[2], make_csr(users[2].username, key))
    thief = place(make_user("thief"), make_csr("thief", key))  # the same key for another user
    events = AuditEvent.objects.count()
    decided = issuance.orders_fulfil(order_id=orders[0].pk)
    assert [o.pk for o in decided] == [o.pk for o in orders] + [thief.pk]
    statuses = {o.pk: o.status for o in CertificateOrder.objects.all()}
    assert [statuses[o.pk] for o in orders] == ["issued"] * 3
    # left for their own tasks: second orders of identities already in the batch (the thief's
    # order, of the same key, comes later and wins: the other is refused as a key of another)
    assert statuses[again.pk] == statuses[stolen.pk] == "pending"
    assert statuses[thief.pk] == "issued"
    assert AuditEvent.objects.count() == events + 4 and audit_verify()[1] is None
    # the tasks of the decided orders change nothing; the others are judged on their own
    for order in orders:
        assert issuance.orders_fulfil(order_id=order.pk) == []
    assert fulfil(again).refusal_status == 409
    assert (fulfil(stolen).status, stolen.refusal_status) == ("refused", 409)
    assert Certificate.objects.filter(key_owner__startswith="batch").count() == 3
    assert audit_verify()[1] is None
