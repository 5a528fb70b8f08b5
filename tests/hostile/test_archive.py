"""`e2ee sync` downloads small files through folder archives (GET with Accept x-tar): the archive
is only a transport, so a server that tampers with it gains nothing over tampering with single
downloads (C2, C5), and its member names never become paths (S1)."""

from __future__ import annotations

import io
import tarfile

import pytest

from tests.hostile.proxy import Exchange

pytestmark = [pytest.mark.hostile, pytest.mark.e2e]

# 24 files of one size: sync asks for them in 8 archives of 3 (one per download thread).
FILES = {f"note-{i:02d}.txt": f"archive secret {i:02d}".encode() * 3 for i in range(24)}


@pytest.fixture(scope="module")
def alice(make_device):
    device = make_device("aalice")
    device.init()
    return device


@pytest.fixture(scope="module")
def remote(alice, tmp_path_factory):
    """A/ holding FILES, uploaded by a first sync."""
    source = tmp_path_factory.mktemp("a-source")
    for name, data in FILES.items():
        (source / name).write_bytes(data)
    alice.ok("encrypt", "A")
    alice.ok("sync", source, "A")
    return "A"


def is_archive(exchange: Exchange) -> bool:
    return exchange.method == "GET" and "files" in exchange.query


def edit_archive(edit):  # type: ignore[no-untyped-def]
    """Rewrite every archive answer: edit(list of (TarInfo, bytes)) -> the members to send."""

    def rule(exchange: Exchange) -> None:
        if not is_archive(exchange) or exchange.status != 200:
            return
        with tarfile.open(fileobj=io.BytesIO(exchange.response_body), mode="r|") as archive:
            members = [(m, archive.extractfile(m).read()) for m in archive if m.isfile()]
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for info, data in edit(members):
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        exchange.response_body = out.getvalue()
        exchange.set_header("Content-Length", str(len(exchange.response_body)))

    return rule


def synced(alice, proxy, local):  # type: ignore[no-untyped-def]
    """Sync `remote` down into an empty `local`; (result, archive requests, single GETs)."""
    local.mkdir(parents=True)
    mark = proxy.mark()
    result = alice.run("sync", local, "A")
    gets = [e for e in proxy.since(mark) if e.method == "GET" and "/remote.php/dav/" in e.path]
    archives = [e for e in gets if is_archive(e)]
    return result, archives, [e for e in gets if not is_archive(e)]


def landed(local) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    return {p.name: p.read_bytes() for p in local.iterdir() if p.is_file()}


def test_C2_archive_of_an_honest_server_lands_everything_without_single_gets(
    alice, proxy, remote, tmp_path
):
    result, archives, singles = synced(alice, proxy, tmp_path / "honest")
    assert result.exit_code == 0, result.stderr
    assert landed(tmp_path / "honest") == FILES
    assert len(archives) == 8 and not singles


def test_C2_a_tampered_archive_member_is_refused_and_nothing_partial_lands(
    alice, proxy, remote, tmp_path
):
    def flip_first(members):  # type: ignore[no-untyped-def]
        (info, data), *rest = members
        return [(info, data[:3] + bytes([data[3] ^ 1]) + data[4:]), *rest]

    with proxy.attack(response=edit_archive(flip_first)):
        result, _, _ = synced(alice, proxy, tmp_path / "tampered")
    assert result.exit_code == 3, result.stderr
    assert "DecryptionError" in result.stderr
    assert not [p for p in (tmp_path / "tampered").iterdir() if p.name.endswith(".part")]
    result, _, _ = synced(alice, proxy, tmp_path / "twin")  # the honest twin
    assert result.exit_code == 0 and landed(tmp_path / "twin") == FILES


def test_C5_archive_members_swapped_between_names_are_refused(alice, proxy, remote, tmp_path):
    def swap(members):  # type: ignore[no-untyped-def]
        (a, da), (b, db), *rest = members  # same size: the listing's sizes still match
        return [(a, db), (b, da), *rest]

    with proxy.attack(response=edit_archive(swap)):
        result, _, _ = synced(alice, proxy, tmp_path / "swapped")
    assert result.exit_code == 3, result.stderr
    assert "Error" in result.stderr


def test_S1_archive_member_names_are_never_paths(alice, proxy, remote, tmp_path):
    """Members renamed to escape the folder, resized, duplicated or added are not used; the
    files they should have carried come one by one, nothing is written outside the folder."""

    def hostile(members):  # type: ignore[no-untyped-def]
        (a, da), (b, db), third = members
        escape = tarfile.TarInfo("../escaped")
        resized = tarfile.TarInfo(b.name)
        added = tarfile.TarInfo(str(tmp_path / "absolute"))
        return [(escape, da), (resized, db + b"x"), third, third, (added, da)]

    with proxy.attack(response=edit_archive(hostile)):
        result, archives, singles = synced(alice, proxy, tmp_path / "inner" / "local")
    assert result.exit_code == 0, result.stderr
    assert landed(tmp_path / "inner" / "local") == FILES
    assert len(archives) == 8 and len(singles) == 16  # two bent members per archive
    assert sorted(p.name for p in (tmp_path / "inner").iterdir()) == ["local"]
    assert not (tmp_path / "absolute").exists()


def test_a_server_without_archives_gets_one_request_per_file(alice, proxy, remote, tmp_path):
    def refuse(exchange: Exchange) -> None:
        if is_archive(exchange):
            exchange.respond(403, b"no archives here")

    with proxy.attack(request=refuse):
        result, archives, singles = synced(alice, proxy, tmp_path / "fallback")
    assert result.exit_code == 0, result.stderr
    assert landed(tmp_path / "fallback") == FILES
    # each download thread may have asked before the first refusal came back; none after it
    assert 1 <= len(archives) <= 8 and len(singles) == len(FILES)
