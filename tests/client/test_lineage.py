"""e2ee-stack's metadata extensions, unit by unit: links (THREATS S3, M5), the file-drop
provenance flag (M10) and padding of sealed metadata (M12). The hostile suite runs the same
defences against a malicious server end to end."""

from __future__ import annotations

import gzip
import json

import pytest

from client import crypto, protocol
from client.crypto.lineage import Head, Place, check_extends, check_place, links_for
from client.crypto.metadata import (
    MIN_PADDED_BYTES,
    _encrypt_folder_metadata_from_parts,
    gunzip,
    padded_length,
)
from client.errors import ForkDetectedError, MalformedMetadataError, MetadataBindingError

KEY = bytes(range(16))
PLACE = Place("4f0c", "17", "17")
D = [f"{n:064x}" for n in range(40)]  # version hashes


# --- links: place --------------------------------------------------------------------------


def test_links_name_their_place():
    check_place(links_for(PLACE, None, None), PLACE, linked_before=False)
    check_place(links_for(PLACE, None, None), PLACE, linked_before=True)


@pytest.mark.parametrize(
    "other", [Place("9a9a", "17", "17"), Place("4f0c", "5e5e", "17"), Place("4f0c", "17", "99")]
)
def test_links_of_another_place_are_refused(other):
    with pytest.raises(MetadataBindingError, match="belongs to folder"):
        check_place(links_for(other, None, None), PLACE, linked_before=False)


def test_unlinked_document_only_for_a_folder_never_seen_linked():
    check_place(None, PLACE, linked_before=False)  # written by another client: accepted
    with pytest.raises(MetadataBindingError, match="no longer names its place"):
        check_place(None, PLACE, linked_before=True)


# --- links: history ------------------------------------------------------------------------


def chain(length: int) -> tuple[protocol.FolderLinks, Head]:
    """Links and head of version ``length`` of an honest history (counters 1..length)."""
    links = links_for(PLACE, None, None)
    for counter in range(1, length):
        links = links_for(PLACE, Head(counter, D[counter]), links)
    return links, Head(length, D[length])


def test_window_is_newest_first_and_bounded():
    links, _ = chain(30)
    assert [c for c, _ in links.ancestors] == list(range(29, 29 - protocol.MAX_ANCESTORS, -1))


@pytest.mark.parametrize("last", [None, 1, 5, 9, 10])
def test_descendants_and_the_same_version_pass(last):
    links, head = chain(10)
    check_extends(links, head, None if last is None else Head(last, D[last]))


def test_equal_counter_other_contents_is_a_fork():
    links, head = chain(10)
    with pytest.raises(ForkDetectedError, match="other contents"):
        check_extends(links, head, Head(10, D[39]))


def test_a_branch_that_skips_our_version_is_a_fork():
    links, head = chain(10)
    with pytest.raises(ForkDetectedError, match="does not build on version 7"):
        check_extends(links, head, Head(7, D[38]))  # we accepted another version 7


def test_a_new_history_over_a_known_folder_is_a_fork():
    links, head = links_for(PLACE, None, None), Head(3, D[3])
    with pytest.raises(ForkDetectedError):
        check_extends(links, head, Head(1, D[1]))


def test_beyond_the_window_nothing_can_be_checked():
    """The documented limit: a reader that missed more versions than the window holds."""
    links, head = chain(30)
    check_extends(links, head, Head(3, D[38]))


def test_links_round_trip_and_strict_parsing():
    links, _ = chain(4)
    folder = protocol.FolderMetadata(counter=4, links=links)
    blob = _encrypt_folder_metadata_from_parts(folder, KEY, root=False, nonce=b"n" * 12)
    assert crypto.decrypt_folder_metadata(blob, KEY) == folder
    good = links.to_json()
    for bad in (
        {**good, "folder": "../x"},
        {**good, "parent": 17},
        {**good, "ancestors": [[1, "zz"]]},
        {**good, "ancestors": [[True, D[1]]]},
        {**good, "ancestors": [[n, D[n]] for n in range(protocol.MAX_ANCESTORS + 1)]},
        {k: v for k, v in good.items() if k != "root"},
    ):
        with pytest.raises(MalformedMetadataError):
            protocol.parse_folder_metadata({"counter": 4, protocol.LINKS_FIELD: bad})


# --- file-drop provenance --------------------------------------------------------------------


def test_dropped_flag_round_trips_and_is_strict():
    _, entry = crypto.encrypt_file(b"x", filename="tip.txt", mimetype="text/plain")
    assert "dropped" not in entry.to_json()  # twin: member-written entries carry nothing
    dropped = protocol.parse_file_entry({**entry.to_json(), "dropped": True}, "f")
    assert dropped is not None and dropped.dropped and dropped.to_json()["dropped"] is True
    with pytest.raises(MalformedMetadataError):
        protocol.parse_file_entry({**entry.to_json(), "dropped": "yes"}, "f")


def test_a_drop_opens_only_in_the_folder_it_was_sealed_for(alice):
    _, entry = crypto.encrypt_file(b"d", filename="tip.txt", mimetype="text/plain")
    me = [(alice.user_id, alice.certificate.public_key)]
    bound = crypto.create_filedrop_entry(entry, me, folder="17")
    assert crypto.open_filedrop_entry(bound, alice.user_id, alice.private_key, folder="17") == entry
    with pytest.raises(
        MalformedMetadataError, match="sealed for folder 17 was served in folder 18"
    ):
        crypto.open_filedrop_entry(bound, alice.user_id, alice.private_key, folder="18")
    # a drop from a client that seals no folder (Nextcloud's web page) opens anywhere
    unbound = crypto.create_filedrop_entry(entry, me)
    assert (
        crypto.open_filedrop_entry(unbound, alice.user_id, alice.private_key, folder="18") == entry
    )


# --- padding ---------------------------------------------------------------------------------


def test_padded_lengths_hide_small_differences_for_little_overhead():
    lengths = [1, 100, 4096, 4097, 5000, 65_537, 1_000_000, 50_000_000]
    for n in lengths:
        padded = padded_length(n)
        assert padded >= max(n, MIN_PADDED_BYTES)
        assert n <= MIN_PADDED_BYTES or padded <= n * 1.12
    assert padded_length(70_000) == padded_length(70_100)


def sealed_size(names: list[str]) -> int:
    files = {}
    for i, name in enumerate(names):
        _, entry = crypto.encrypt_file(b"x", filename=name, mimetype="text/plain")
        files[f"{i:032x}"] = entry
    folder = protocol.FolderMetadata(counter=1, files=files, key_checksums=(D[0],))
    return len(
        _encrypt_folder_metadata_from_parts(folder, KEY, root=True, nonce=b"n" * 12).ciphertext
    )


def test_sealed_metadata_length_does_not_tell_a_matching_guess():
    secret = "quarterly-layoffs-list-confidential.txt"
    assert sealed_size([secret, secret]) == sealed_size([secret, "zq8v-k2m4-wx7r-p0n1-bt5y.txt"])


def test_padding_is_zeros_after_one_gzip_member():
    folder = protocol.FolderMetadata(counter=1)
    blob = _encrypt_folder_metadata_from_parts(folder, KEY, root=False, nonce=b"n" * 12)
    plain = crypto.aead.decrypt(crypto.FileSecret(KEY, b"n" * 12), blob.ciphertext)
    assert len(plain) == MIN_PADDED_BYTES
    assert json.loads(gzip.decompress(plain))["counter"] == 1  # stock gzip readers skip zeros
    member = gzip.compress(b"{}", mtime=0)
    assert gunzip(member + bytes(100)) == b"{}"
    with pytest.raises(MalformedMetadataError, match="not padding"):
        gunzip(member + b"\0\0junk")
