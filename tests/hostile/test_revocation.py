"""The revoked list against a malicious server (one stack, one proxy).

An admin revoked bob's certificate; the server wants a client to wrap a folder key for it
anyway. It keeps serving bob's certificate and then tries to hide the revocation: drop bob's
serial from the signed list (the CA signature breaks), serve an older edition or none at all
(the device keeps the highest edition it saw), or — holding the CA key — sign a new edition
without it (a serial once seen revoked stays revoked). Every attack ends in exit 3 with nothing
shared or written; each has its honest twin through the same proxy.
"""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests.certificates.revoking import revoke
from tests.hostile.proxy import E2EE_API, Exchange

pytestmark = [pytest.mark.hostile, pytest.mark.e2e]

REVOKED = "/ocs/v2.php/apps/e2ee_stack/api/v1/revoked"


def served_editions(proxy) -> list[dict]:
    """Every signed edition the real server served so far: {"list", "signature", "body"}."""
    out = []
    for exchange in proxy.since(0):
        if exchange.method == "GET" and exchange.path == REVOKED and exchange.status == 200:
            data = exchange.ocs_data()
            if data.get("list"):
                out.append({**data, "body": json.loads(data["list"])})
    return out


def serve_revoked_certificate(user: str, pem: str):
    """The server keeps handing out ``user``'s revoked certificate."""

    def rule(exchange: Exchange) -> None:
        if exchange.method == "GET" and exchange.path == f"{E2EE_API}/public-key":
            asked = json.loads(exchange.query.get("users", ["[]"])[-1])
            if user in asked:
                exchange.status = 200
                exchange.set_ocs_data({"public-keys": {user: pem}})

    return rule


def edit_list(edit):
    """Rewrite the revoked endpoint's answer (``edit`` takes and returns the OCS data)."""

    def rule(exchange: Exchange) -> None:
        if exchange.method == "GET" and exchange.path == REVOKED and exchange.status == 200:
            exchange.set_ocs_data(edit(exchange.ocs_data()))

    return rule


def combined(*rules):
    def rule(exchange: Exchange) -> None:
        for each in rules:
            each(exchange)

    return rule


def without(serial: str):
    def edit(data: dict) -> dict:
        body = json.loads(data["list"])
        body["revoked"] = [e for e in body["revoked"] if e["serial"] != serial]
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return {**data, "list": text, "revoked": body["revoked"]}

    return edit


@pytest.fixture(scope="module")
def revoked_bob(make_device, stack, proxy):
    """(bob's revoked certificate PEM, its serial); the devices made before saw edition 1."""
    bob = make_device("rvbob")
    bob.init()
    make_device("rvcarol").init()
    pem = bob.certificate_pem
    serial = revoke(stack, "rvbob")
    return pem, serial


def share_attempt(device, proxy, folder: str, rule) -> tuple:
    with proxy.attack(response=rule):
        mark = proxy.mark()
        result = device.fails(3, "share", folder, "rvbob")
    assert proxy.requests_to("POST", "/shares", mark) == []
    assert proxy.metadata_uploads(mark) == []
    return result


def test_revoked_certificate_served_anyway(make_device, proxy, revoked_bob):
    pem, serial = revoked_bob
    ann = make_device("rvann")
    ann.init()
    ann.ok("encrypt", "RV0")
    ann.ok("share", "RV0", "rvcarol")  # honest twin: a certificate that is not revoked
    result = share_attempt(ann, proxy, "RV0", serve_revoked_certificate("rvbob", pem))
    assert "CertificateRevokedError" in result.stderr and serial in result.stderr


def test_serial_dropped_from_the_list(make_device, proxy, revoked_bob):
    pem, serial = revoked_bob
    fresh = make_device("rvfresh")  # never saw a list with bob's serial
    fresh.init()
    fresh.ok("encrypt", "RV1")
    with proxy.attack(response=edit_list(lambda data: data)):  # twin: untouched list
        fresh.ok("share", "RV1", "rvcarol")
    attack = combined(serve_revoked_certificate("rvbob", pem), edit_list(without(serial)))
    result = share_attempt(fresh, proxy, "RV1", attack)
    assert "RevocationListSignatureError" in result.stderr


def test_older_edition_or_none_served(make_device, proxy, revoked_bob):
    pem, serial = revoked_bob
    dan = make_device("rvdan")  # logs in after the revocation: saw the newest edition
    dan.init()
    dan.ok("encrypt", "RV2")
    editions = served_editions(proxy)
    newest = max(e["body"]["sequence"] for e in editions)
    old = next(e for e in editions if e["body"]["sequence"] < newest)
    assert serial not in {entry["serial"] for entry in old["body"]["revoked"]}
    replay = {"list": old["list"], "signature": old["signature"], "revoked": []}
    rolled_back = combined(serve_revoked_certificate("rvbob", pem), edit_list(lambda _: replay))
    result = share_attempt(dan, proxy, "RV2", rolled_back)
    assert "RevocationListRollbackError" in result.stderr and f"#{newest}" in result.stderr
    none = {"list": None, "signature": None, "revoked": []}
    hidden = combined(serve_revoked_certificate("rvbob", pem), edit_list(lambda _: none))
    result = share_attempt(dan, proxy, "RV2", hidden)
    assert "RevocationListRollbackError" in result.stderr
    dan.ok("share", "RV2", "rvcarol")  # twin: the real list again


def forged_edition(attacker, body: dict) -> dict:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    signature = attacker.ca_key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
    return {"list": text, "signature": base64.b64encode(signature).decode(), "revoked": []}


def test_ca_signed_edition_leaving_out_a_seen_serial(make_device, proxy, attacker, revoked_bob):
    pem, serial = revoked_bob
    eve = make_device("rveve")  # saw bob revoked at login
    eve.init()
    eve.ok("encrypt", "RV3")
    current = served_editions(proxy)[-1]["body"]
    kept = forged_edition(attacker, {**current, "sequence": current["sequence"] + 1})
    twin = make_device("rveve", "twin")  # throw-away: it accepts edition n+1 for good
    with proxy.attack(response=edit_list(lambda _: kept)):
        twin.ok("status")  # twin: a newer edition that keeps every serial is accepted
    body = {**current, "sequence": current["sequence"] + 1}
    body["revoked"] = [e for e in body["revoked"] if e["serial"] != serial]
    dropped = combined(
        serve_revoked_certificate("rvbob", pem), edit_list(lambda _: forged_edition(attacker, body))
    )
    result = share_attempt(eve, proxy, "RV3", dropped)
    assert "RevocationListRollbackError" in result.stderr and "leaves out" in result.stderr


@pytest.mark.xfail(
    strict=True,
    reason="design limit: a device that never saw a revocation trusts the newest edition the "
    "CA signed; an operator holding the CA key can sign one without the serial",
)
def test_ca_signed_edition_without_the_serial_first_contact(
    make_device, proxy, attacker, revoked_bob
):
    pem, serial = revoked_bob
    current = served_editions(proxy)[-1]["body"]
    body = {**current, "sequence": current["sequence"] + 100}
    body["revoked"] = [e for e in body["revoked"] if e["serial"] != serial]
    forged = forged_edition(attacker, body)
    with proxy.attack(response=edit_list(lambda _: forged)):
        first = make_device("rvfirst")
        first.init()
        first.ok("encrypt", "RV4")
    share_attempt(
        first,
        proxy,
        "RV4",
        combined(serve_revoked_certificate("rvbob", pem), edit_list(lambda _: forged)),
    )
