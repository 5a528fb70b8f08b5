"""Credentials, the outsider, and bad paths (in-process, through server.wsgi.application).
Each refusal has a positive twin that shows the same request succeeds when it is legitimate."""

from __future__ import annotations

import base64
import re

import pytest

from server.files.models import Node

from .conftest import PASSWORD
from .davxml import propfind

A = "/remote.php/dav/files/alice"
B = "/remote.php/dav/files/bob"


# --- credentials -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PROPFIND", "GET", "PUT", "MKCOL", "DELETE"])
def test_no_credentials_is_401_with_a_basic_challenge(dav_client, make_user, method):
    make_user("alice", PASSWORD)
    response = dav_client().request(method, A + "/x")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Basic realm="')
    assert Node.objects.filter(name="x").count() == 0


def test_wrong_password_is_401(dav_client, make_user):
    make_user("alice", PASSWORD)
    response = dav_client("alice", "wrong").request("PROPFIND", A + "/", headers={"Depth": "0"})
    assert response.status_code == 401 and "WWW-Authenticate" in response.headers


def test_unknown_user_is_401(dav_client, make_user):
    make_user("alice", PASSWORD)
    assert dav_client("mallory", PASSWORD).request("PROPFIND", A + "/").status_code == 401


@pytest.mark.parametrize("header", ["Basic !!!notbase64", "Basic " + base64.b64encode(
    b"no-colon").decode(), "Basic", "Digest username=alice", "Bearer abc"])
def test_malformed_or_other_authorization_is_401(dav_client, make_user, header):
    make_user("alice", PASSWORD)
    response = dav_client().request("PROPFIND", A + "/", headers={"Authorization": header})
    assert response.status_code == 401 and "WWW-Authenticate" in response.headers


def test_account_password_is_accepted(alice):  # positive twin of the 401s
    assert alice.request("PROPFIND", A + "/", headers={"Depth": "0"}).status_code == 207


def test_app_password_is_accepted(make_user, app_password, dav_client):
    user = make_user("carol", PASSWORD)
    client = dav_client("carol", app_password(user))
    assert client.put("/remote.php/dav/files/carol/x", content=b"x").status_code == 201


# --- the outsider ------------------------------------------------------------------------


@pytest.fixture
def bobs_tree(bob):  # type: ignore[no-untyped-def]
    assert bob.request("MKCOL", B + "/private").status_code == 201
    assert bob.put(B + "/private/secret.txt", content=b"bob's secret").status_code == 201
    return {n.name: (n.etag, n.size) for n in Node.objects.filter(owner__username="bob")}


def bobs_state():  # type: ignore[no-untyped-def]
    return {n.name: (n.etag, n.size) for n in Node.objects.filter(owner__username="bob")}


@pytest.mark.parametrize("method,path,headers", [
    ("PROPFIND", B + "/", {"Depth": "1"}),
    ("PROPFIND", B + "/private/secret.txt", {"Depth": "0"}),
    ("GET", B + "/private/secret.txt", {}),
    ("HEAD", B + "/private/secret.txt", {}),
    ("PUT", B + "/private/secret.txt", {}),
    ("PUT", B + "/private/new.txt", {}),
    ("PUT", B + "/missing/new.txt", {}),
    ("MKCOL", B + "/private/sub", {}),
    ("DELETE", B + "/private/secret.txt", {}),
    ("DELETE", B + "/private", {}),
    ("MOVE", B + "/private/secret.txt", {"Destination": "http://testserver" + A + "/stolen"}),
    ("COPY", B + "/private/secret.txt", {"Destination": "http://testserver" + A + "/stolen"}),
    ("PROPPATCH", B + "/private/secret.txt", {}),
])
def test_outsider_gets_404_and_changes_nothing(alice, bobs_tree, method, path, headers):
    response = alice.request(method, path, headers=headers, content=b"alice was here"
                             if method == "PUT" else None)
    assert response.status_code == 404
    assert b"secret" not in response.content
    assert bobs_state() == bobs_tree
    assert not Node.objects.filter(owner__username="alice", name="stolen").exists()


def test_outsider_answers_look_like_missing_paths(alice, bobs_tree):
    existing = alice.request("PROPFIND", B + "/private/secret.txt", headers={"Depth": "0"})
    missing = alice.request("PROPFIND", B + "/private/nothing.txt", headers={"Depth": "0"})

    def without_timestamp(body: bytes) -> bytes:  # the error page carries the time
        return re.sub(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+", b"", body)

    assert existing.status_code == missing.status_code == 404
    assert without_timestamp(existing.content) == without_timestamp(missing.content)


@pytest.mark.parametrize("method", ["MOVE", "COPY"])
def test_move_or_copy_into_someone_elses_tree_writes_nothing_there(alice, bobs_tree, method):
    assert alice.put(A + "/mine.txt", content=b"mine").status_code == 201
    response = alice.request(method, A + "/mine.txt",
                             headers={"Destination": "http://testserver" + B + "/private/x"})
    assert response.status_code in (404, 409)
    assert bobs_state() == bobs_tree
    assert alice.get(A + "/mine.txt").content == b"mine"


def test_the_bare_files_collection_lists_nobody(alice, bobs_tree):
    response = alice.request("PROPFIND", "/remote.php/dav/files/", headers={"Depth": "1"})
    assert response.status_code == 404
    assert b"bob" not in response.content


def test_owner_sees_own_tree(bob, bobs_tree):  # positive twin
    assert bob.get(B + "/private/secret.txt").content == b"bob's secret"
    assert B + "/private/" in propfind(bob, B + "/", depth="1")


# --- bad paths -----------------------------------------------------------------------------


def raw(application, method: str, path_info: str, raw_uri: str | None = None,
        **headers: str) -> tuple[str, bytes]:
    """Call the WSGI app with an exact PATH_INFO (clients normalise '..' away before sending)."""
    import io

    auth = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path_info, "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "testserver", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver", "HTTP_AUTHORIZATION": f"Basic {auth}",
        "wsgi.input": io.BytesIO(b"x"), "wsgi.errors": io.StringIO(), "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0), "wsgi.multithread": False, "wsgi.multiprocess": False,
        "wsgi.run_once": False, "CONTENT_LENGTH": "1" if method == "PUT" else "0",
    }
    if raw_uri is not None:
        environ["RAW_URI"] = raw_uri
    environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
    status: list[str] = []

    def start_response(s, h, exc_info=None):  # type: ignore[no-untyped-def]
        status.append(s)

    body = b"".join(application(environ, start_response))
    return status[0], body


@pytest.mark.parametrize("path_info", [
    A + "/../bob/private/secret.txt",
    A + "/dir/../../bob/x",
    "/remote.php/webdav/../../../../etc/passwd",
    A + "/./x",
    A + "/x\x00.txt",
    A + "/a\\..\\..\\b",
])
def test_traversal_in_the_path_is_400_and_writes_nothing(alice, application, tmp_path,
                                                         path_info):
    def files() -> set:  # type: ignore[type-arg]
        return {p for p in tmp_path.rglob("*") if p.is_file()}

    before = files()
    status, _ = raw(application, "PUT", path_info)
    assert status.startswith(("400", "404"))
    assert Node.objects.filter(kind="file").count() == 0
    assert files() == before


@pytest.mark.parametrize("raw_uri", [
    A + "/a%2Fb", A + "/a%2fb", A + "/%2e%2e%2Fbob%2Fx", A + "/a%5Cb", A + "/a%00b",
])
def test_encoded_separators_are_400(alice, application, raw_uri):
    from urllib.parse import unquote

    path_info = unquote(raw_uri).encode("utf-8").decode("latin-1")
    status, _ = raw(application, "PUT", path_info, raw_uri=raw_uri)
    assert status.startswith("400")
    assert Node.objects.filter(kind="file").count() == 0


def test_absolute_path_inside_the_url_stays_inside_the_users_tree(alice, blob_dir):
    # "//etc/passwd" is just a (missing) folder "etc" in alice's tree.
    response = alice.put(A + "//etc/passwd", content=b"x")
    assert response.status_code == 409
    assert Node.objects.filter(kind="file").count() == 0


@pytest.mark.parametrize("destination", [
    "http://testserver/remote.php/dav/files/alice/../bob/x",
    "http://testserver/remote.php/dav/files/alice/a%2Fb",
    "http://other.example/remote.php/dav/files/alice/x",
    "/etc/passwd",
    "http://testserver/etc/passwd",
])
def test_bad_destinations_are_refused(alice, destination):
    assert alice.put(A + "/src.txt", content=b"src").status_code == 201
    response = alice.request("MOVE", A + "/src.txt", headers={"Destination": destination})
    assert response.status_code in (400, 404, 409, 502)
    assert alice.get(A + "/src.txt").content == b"src"
    assert set(Node.objects.values_list("name", flat=True)) == {"", "src.txt"}


@pytest.mark.parametrize("name", ["a..b.txt", "..dotted", "100%25.txt", "spaced%20name"])
def test_legitimate_names_with_dots_and_escapes_work(alice, application, name):  # twins
    assert alice.put(f"{A}/{name}", content=b"ok").status_code == 201
    assert alice.get(f"{A}/{name}").content == b"ok"


def test_legitimate_raw_uri_with_escapes_is_accepted(alice, application):  # twin of %2F
    status, _ = raw(application, "PUT", A + "/a b", raw_uri=A + "/a%20b")
    assert status.startswith("201")
