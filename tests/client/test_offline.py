"""The ``e2ee offline`` commands: vectors open through them; exit statuses 0/2/3/1; one line."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from client.offline import atomic_output, offline

WEB = "v2-web-admin-alice"
V1 = "v1-testdata-version12"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def run(*args: str | Path):
    return CliRunner().invoke(offline, [str(a) for a in args], catch_exceptions=False)


def assert_failed(result, code: int) -> None:
    assert result.exit_code == code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("e2ee offline:")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


# --- unwrap-key ------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["admin", "alice"])
def test_unwrap_key_with_mnemonic_file(vectors, user):
    result = run(
        "unwrap-key",
        "--encrypted-key",
        vectors.path(WEB, f"{user}.encrypted-private-key.txt"),
        "--mnemonic-file",
        vectors.path(WEB, f"{user}.mnemonic.txt"),
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == vectors.text(WEB, f"{user}.private-key.DERIVED.pem")


def test_unwrap_key_with_mnemonic_words(vectors):
    result = run(
        "unwrap-key",
        "--encrypted-key",
        vectors.path(V1, "admin.private.key"),
        "--mnemonic",
        vectors.text(V1, "admin.mnemonic.txt").strip(),
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == vectors.text(V1, "admin.private-key.DERIVED.pem")


def test_unwrap_key_wrong_mnemonic_exits_3(vectors):
    words = vectors.text(WEB, "alice.mnemonic.txt")
    result = run(
        "unwrap-key",
        "--encrypted-key",
        vectors.path(WEB, "admin.encrypted-private-key.txt"),
        "--mnemonic",
        words,
    )
    assert_failed(result, 3)
    assert "WrongMnemonic" in result.stderr
    assert words.split()[0] not in result.stderr  # the mnemonic is never echoed


def test_unwrap_key_needs_exactly_one_mnemonic_source(vectors):
    result = run(
        "unwrap-key", "--encrypted-key", vectors.path(WEB, "admin.encrypted-private-key.txt")
    )
    assert_failed(result, 2)
    result = run(
        "unwrap-key",
        "--encrypted-key",
        vectors.path(WEB, "admin.encrypted-private-key.txt"),
        "--mnemonic",
        "a b",
        "--mnemonic-file",
        vectors.path(WEB, "admin.mnemonic.txt"),
    )
    assert_failed(result, 2)


def test_unknown_option_and_missing_file_are_usage_errors(tmp_path):
    assert_failed(run("unwrap-key", "--nope"), 2)
    assert_failed(run("unwrap-key", "--encrypted-key", tmp_path / "missing", "--mnemonic", "x"), 2)


def test_malformed_key_file_exits_1(tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text("not|a|key")
    assert_failed(run("unwrap-key", "--encrypted-key", bad, "--mnemonic", "a b c"), 1)


# --- decrypt-metadata ------------------------------------------------------------------------


def _decrypt_web(vectors, folder, *extra):
    return run(
        "decrypt-metadata",
        "--metadata",
        vectors.path(WEB, f"{folder}.metadata.json"),
        *extra,
    )


def test_decrypt_root_metadata_with_private_key(vectors):
    result = _decrypt_web(
        vectors,
        "root-folder",
        "--private-key",
        vectors.path(WEB, "admin.private-key.DERIVED.pem"),
        "--user",
        "admin",
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == vectors.json(WEB, "root-folder.metadata.decrypted.json")


def test_decrypt_root_metadata_fully_verified(vectors):
    result = _decrypt_web(
        vectors,
        "root-folder",
        "--private-key",
        vectors.path(WEB, "alice.private-key.DERIVED.pem"),
        "--user",
        "alice",
        "--signature",
        vectors.path(WEB, "root-folder.metadata.signature.b64"),
        "--server-key",
        vectors.path(WEB, "server-public-key.pem"),
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == vectors.json(WEB, "root-folder.metadata.decrypted.json")


def test_decrypt_subfolder_with_metadata_key_and_signature(vectors):
    result = _decrypt_web(
        vectors,
        "sub-folder",
        "--metadata-key",
        vectors.text(WEB, "metadata-key.DERIVED.hex").strip(),
        "--signature",
        vectors.path(WEB, "sub-folder.metadata.signature.b64"),
        "--server-key",
        vectors.path(WEB, "server-public-key.pem"),
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == vectors.json(WEB, "sub-folder.metadata.decrypted.json")


def test_decrypt_metadata_from_an_ocs_response(vectors, tmp_path):
    ocs = {
        "ocs": {
            "meta": {"status": "ok", "statuscode": 200, "message": "OK"},
            "data": {"meta-data": vectors.text(WEB, "sub-folder.metadata.json")},
        }
    }
    path = tmp_path / "ocs.json"
    path.write_text(json.dumps(ocs))
    key = vectors.text(WEB, "metadata-key.DERIVED.hex").strip()
    result = run("decrypt-metadata", "--metadata", path, "--metadata-key", key)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == vectors.json(WEB, "sub-folder.metadata.decrypted.json")


def test_decrypt_metadata_signature_over_other_document_exits_3(vectors):
    result = _decrypt_web(
        vectors,
        "root-folder",
        "--private-key",
        vectors.path(WEB, "alice.private-key.DERIVED.pem"),
        "--user",
        "alice",
        "--signature",
        vectors.path(WEB, "sub-folder.metadata.signature.b64"),
        "--server-key",
        vectors.path(WEB, "server-public-key.pem"),
    )
    assert_failed(result, 3)
    assert "MetadataSignatureError" in result.stderr


def test_decrypt_metadata_wrong_user_key_exits_3(vectors):
    result = _decrypt_web(
        vectors,
        "root-folder",
        "--private-key",
        vectors.path(WEB, "admin.private-key.DERIVED.pem"),
        "--user",
        "alice",
    )
    assert_failed(result, 3)


def test_decrypt_metadata_usage_errors(vectors):
    assert_failed(_decrypt_web(vectors, "root-folder"), 2)
    assert_failed(_decrypt_web(vectors, "root-folder", "--metadata-key", "abcd"), 2)
    result = _decrypt_web(
        vectors,
        "root-folder",
        "--metadata-key",
        "00" * 16,
        "--signature",
        vectors.path(WEB, "root-folder.metadata.signature.b64"),
    )
    assert_failed(result, 2)


def test_decrypt_metadata_with_the_wrong_metadata_key_exits_3(vectors):
    assert_failed(_decrypt_web(vectors, "sub-folder", "--metadata-key", "00" * 16), 3)


@pytest.mark.parametrize("folder_id", ["134", "146", "159", "182"])
def test_decrypt_v1_metadata(vectors, folder_id, tmp_path):
    pem = tmp_path / "admin.pem"
    pem.write_text(vectors.text(V1, "admin.private-key.DERIVED.pem"))
    result = run(
        "decrypt-metadata",
        "--metadata",
        vectors.path(V1, f"metadata/{folder_id}.meta.data.json"),
        "--private-key",
        pem,
        "--user",
        "admin",
    )
    assert result.exit_code == 0, result.stderr
    files = json.loads(result.stdout)["files"]
    expected = vectors.json(V1, f"metadata/{folder_id}.meta.data.DERIVED-decrypted.json")
    assert {
        uid: {k: e[k] for k in ("filename", "key", "mimetype")} for uid, e in files.items()
    } == (expected["files"])
    # With the metadata key instead of RSA: the same answer.
    by_key = run(
        "decrypt-metadata",
        "--metadata",
        vectors.path(V1, f"metadata/{folder_id}.meta.data.json"),
        "--metadata-key",
        expected["metadataKeyHex"],
    )
    assert by_key.exit_code == 0, by_key.stderr
    assert json.loads(by_key.stdout)["files"] == files


def test_malformed_metadata_exits_1(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{"metadata": {}, "version": "2.0", "version": "1"}')
    assert_failed(run("decrypt-metadata", "--metadata", path, "--metadata-key", "00" * 16), 1)


# --- decrypt-file ----------------------------------------------------------------------------


def _web_file_args(vectors, tmp_path):
    key = bytes.fromhex(vectors.text(WEB, "metadata-key.DERIVED.hex").strip())
    from client import crypto, protocol

    doc = protocol.parse_metadata_document(vectors.text(WEB, "root-folder.metadata.json"))
    entry = crypto.decrypt_folder_metadata(doc.metadata, key).files[
        "ad3b12554e0d4364854ae3e21b170152"
    ]
    blob = tmp_path / "blob"
    blob.write_bytes(
        base64.b64decode(vectors.text(WEB, "file.ad3b12554e0d4364854ae3e21b170152.encrypted.b64"))
    )
    return blob, entry


def test_decrypt_file_v2(vectors, tmp_path):
    blob, entry = _web_file_args(vectors, tmp_path)
    out = tmp_path / "out.txt"
    result = run(
        "decrypt-file",
        "--blob",
        blob,
        "--key",
        base64.b64encode(entry.key).decode(),
        "--nonce",
        base64.b64encode(entry.nonce).decode(),
        "--tag",
        base64.b64encode(entry.authentication_tag).decode(),
        "--out",
        out,
    )
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes() == b"test content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob", "out.txt"]


def test_decrypt_file_v1_vectors(vectors, tmp_path):
    for item in vectors.json(V1, "index.json")["fileVectors"]:
        out = tmp_path / item["filename"]
        result = run(
            "decrypt-file",
            "--blob",
            vectors.path(V1, f"files/{item['id']}.encrypted.bin"),
            "--key",
            item["key"],
            "--nonce",
            item["iv"],
            "--tag",
            item["authenticationTag"],
            "--out",
            out,
        )
        assert result.exit_code == 0, result.stderr
        assert out.read_bytes() == vectors.bytes(V1, f"files/{item['id']}.plaintext.bin")


def test_decrypt_file_tampered_leaves_no_output(vectors, tmp_path):
    blob, entry = _web_file_args(vectors, tmp_path)
    data = bytearray(blob.read_bytes())
    data[3] ^= 1
    blob.write_bytes(bytes(data))
    out = tmp_path / "out.txt"
    result = run(
        "decrypt-file",
        "--blob",
        blob,
        "--key",
        base64.b64encode(entry.key).decode(),
        "--nonce",
        base64.b64encode(entry.nonce).decode(),
        "--out",
        out,
    )
    assert_failed(result, 3)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob"]  # no temporary file left


def test_decrypt_file_bad_key_is_usage_error(vectors, tmp_path):
    blob, entry = _web_file_args(vectors, tmp_path)
    nonce = base64.b64encode(entry.nonce).decode()
    assert_failed(
        run(
            "decrypt-file", "--blob", blob, "--key", "!!", "--nonce", nonce, "--out", tmp_path / "o"
        ),
        2,
    )
    short = base64.b64encode(b"short").decode()
    assert_failed(
        run(
            "decrypt-file",
            "--blob",
            blob,
            "--key",
            short,
            "--nonce",
            nonce,
            "--out",
            tmp_path / "o",
        ),
        2,
    )


def test_decrypt_file_into_missing_directory_exits_1(vectors, tmp_path):
    blob, entry = _web_file_args(vectors, tmp_path)
    result = run(
        "decrypt-file",
        "--blob",
        blob,
        "--key",
        base64.b64encode(entry.key).decode(),
        "--nonce",
        base64.b64encode(entry.nonce).decode(),
        "--out",
        tmp_path / "no" / "such" / "dir",
    )
    assert_failed(result, 1)


# --- verify-certificate ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cert", "server", "user"),
    [
        ((WEB, "admin.certificate.pem"), (WEB, "server-public-key.pem"), "admin"),
        ((WEB, "alice.certificate.pem"), (WEB, "server-public-key.pem"), "alice"),
        (
            ("web-cert-signature-and-sha256", "louisc.sha1-signed.certificate.pem"),
            ("web-cert-signature-and-sha256", "louisc.server-public-key.pem"),
            "louisc",
        ),
        (
            ("web-cert-signature-and-sha256", "admin.sha256-signed.certificate.pem"),
            ("web-cert-signature-and-sha256", "admin.server-public-key.pem"),
            "admin",
        ),
    ],
)
def test_verify_certificate_vectors(vectors, cert, server, user):
    result = run(
        "verify-certificate",
        "--certificate",
        vectors.path(*cert),
        "--server-key",
        vectors.path(*server),
        "--user",
        user,
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"ok: certificate of {user}")


def test_verify_certificate_failures_exit_3(vectors):
    args = ["--server-key", vectors.path(WEB, "server-public-key.pem")]
    wrong_user = run(
        "verify-certificate",
        "--certificate",
        vectors.path(WEB, "admin.certificate.pem"),
        *args,
        "--user",
        "alice",
    )
    assert_failed(wrong_user, 3)
    assert "CertificateUserMismatchError" in wrong_user.stderr
    other_server = run(
        "verify-certificate",
        "--certificate",
        vectors.path("web-cert-signature-and-sha256", "admin.sha256-signed.certificate.pem"),
        *args,
        "--user",
        "admin",
    )
    assert_failed(other_server, 3)
    assert "CertificateNotIssuedByServerError" in other_server.stderr


# --- the I/O helper and a real process -------------------------------------------------------


def test_atomic_output_renames_only_on_success(tmp_path):
    target = tmp_path / "f"
    with atomic_output(target) as handle:
        handle.write(b"ok")
    assert target.read_bytes() == b"ok"
    with pytest.raises(RuntimeError), atomic_output(target) as handle:
        handle.write(b"partial")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"ok"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_real_process_prints_one_line_and_exit_status(vectors):
    code = "import sys; from client.offline import offline; sys.exit(offline())"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "unwrap-key",
            "--encrypted-key",
            str(vectors.path(WEB, "admin.encrypted-private-key.txt")),
            "--mnemonic",
            "wrong words",
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        check=False,
    )
    assert proc.returncode == 3
    assert len(proc.stderr.splitlines()) == 1
    assert "Traceback" not in proc.stderr
    usage = subprocess.run(
        [sys.executable, "-c", code, "decrypt-file"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        check=False,
    )
    assert usage.returncode == 2
    assert len(usage.stderr.splitlines()) == 1
