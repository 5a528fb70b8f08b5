"""Folder links: each metadata document names its place in the tree (THREATS S3) and the
versions it extends (THREATS M5). e2ee-stack's own extension (README, "Protocol extensions").

The links sit inside the encrypted inner document, so the AEAD and the CMS signature cover
them; the server can neither move a document to another folder nor splice two histories
without the reader noticing. Pure functions: the keystore remembers what a device accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

from client.errors import ForkDetectedError, MetadataBindingError
from client.protocol import MAX_ANCESTORS, FolderLinks


@dataclass(frozen=True)
class Place:
    """Where a document was fetched for: node ids of the folder, its parent and its root."""

    folder: str
    parent: str | None
    root: str


@dataclass(frozen=True)
class Head:
    """One accepted metadata version of a folder: its counter and version hash."""

    counter: int
    digest: str


def links_for(place: Place, built_on: Head | None, earlier: FolderLinks | None) -> FolderLinks:
    """The links of a new version written over ``built_on`` (None: a brand-new folder)."""
    ancestors: tuple[tuple[int, str], ...] = ()
    if built_on is not None:
        inherited = earlier.ancestors if earlier is not None else ()
        ancestors = ((built_on.counter, built_on.digest), *inherited)[:MAX_ANCESTORS]
    return FolderLinks(place.folder, place.parent, place.root, ancestors)


def check_place(links: FolderLinks | None, place: Place, *, linked_before: bool) -> None:
    """The document belongs where it was fetched; a folder once linked stays linked."""
    if links is None:
        if linked_before:
            raise MetadataBindingError(
                f"the metadata of folder {place.folder} no longer names its place in the tree "
                "(replaced, or rewritten by a client that drops e2ee-stack's links)"
            )
        return
    found = (links.folder, links.parent, links.root)
    if found != (place.folder, place.parent, place.root):
        raise MetadataBindingError(
            f"metadata fetched for folder {place.folder} (parent {place.parent}, tree "
            f"{place.root}) belongs to folder {links.folder} (parent {links.parent}, tree "
            f"{links.root})"
        )


def check_extends(links: FolderLinks | None, current: Head, last: Head | None) -> None:
    """The document is the version this device accepted last, or a descendant of it.

    A reader that missed more versions than the document names cannot check (every named
    ancestor is newer than its own last version); that is the window's documented limit.
    """
    if last is None or current.digest == last.digest or links is None:
        return  # first read, same version, or never linked (check_place refuses a lost link)
    if current.counter == last.counter:
        raise ForkDetectedError(
            f"the server shows version {current.counter} of this folder with other contents "
            "than it showed this device before (forked history)"
        )
    if last.digest in {digest for _, digest in links.ancestors}:
        return
    if all(counter > last.counter for counter, _ in links.ancestors) and links.ancestors:
        return
    raise ForkDetectedError(
        f"version {current.counter} of this folder does not build on version {last.counter} "
        "that this device accepted (forked history)"
    )
