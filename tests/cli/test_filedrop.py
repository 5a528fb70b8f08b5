"""e2ee filedrop: an anonymous person drops a file; the owner's next write moves it in."""

from __future__ import annotations

import json

import pytest

from client.api import PERMISSION_CREATE, SHARE_LINK, ServerApi

pytestmark = pytest.mark.e2e


def names(device, path):
    return {item["name"] for item in json.loads(device.ok("--json", "ls", path).stdout)}


def link(device, path):
    with ServerApi(device.stack.base_url, device.user, device.password) as api:
        share = api.create_share(path, SHARE_LINK, permissions=PERMISSION_CREATE)
    return f"{device.stack.base_url}/s/{share.token}"


def test_file_drop_reaches_the_owner(make_device, tmp_path):
    owner = make_device("dora")
    owner.ok("init", "--mnemonic-out", tmp_path / "w")
    owner.ok("encrypt", "Inbox")
    url = link(owner, "Inbox")
    stranger = make_device("nobody-needed", login=False)
    dropped = tmp_path / "tip.txt"
    dropped.write_text("anonymous tip")
    stranger.ok("filedrop", url, dropped)
    stranger.ok("filedrop", url, dropped)  # the same name twice: both kept
    assert names(owner, "Inbox") == set()  # not signed by a member yet

    own = tmp_path / "own.txt"
    own.write_text("mine")
    owner.ok("put", own, "Inbox/")  # the next write moves the drops in
    assert names(owner, "Inbox") == {"own.txt", "tip.txt", "tip (2).txt"}
    out = tmp_path / "out.txt"
    owner.ok("get", "Inbox/tip (2).txt", out)
    assert out.read_text() == "anonymous tip"


def test_file_drop_link_errors(make_device, tmp_path):
    owner = make_device("dana")
    owner.ok("init", "--mnemonic-out", tmp_path / "w")
    owner.ok("mkdir", "PlainBox")
    stranger = make_device("nobody-needed-2", login=False)
    dropped = tmp_path / "x.txt"
    dropped.write_text("x")
    stranger.fails(2, "filedrop", "not a link", dropped)
    stranger.fails(1, "filedrop", link(owner, "PlainBox"), dropped)
    owner.ok("encrypt", "RealBox")
    stranger.ok("filedrop", link(owner, "RealBox"), dropped)  # twin
