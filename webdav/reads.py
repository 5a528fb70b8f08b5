"""The read filters: what WebDAV readers see passes through the configured filters.

A filter may hide or rename entries of a folder listing (E2EE: staged "<name>.e2e-to-save"
entries are hidden, "<name>.e2e-to-delete" ones appear under their original name), resolve a
name that does not exist (E2EE: GET of a name deleted under a lock still finds the committed
version), refuse a read (raise `GateRefused`), and add or override properties.

Filters are listed as dotted paths in settings.WEBDAV_READ_FILTERS, like the write gates, and run
in order; each names an object with the `ReadFilter` methods (subclass it and override what you
need). This module knows nothing about E2EE.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from server.accounts.models import User
from server.files.models import Node

# Methods that only read: the only ones for which a missing name may be resolved by a filter.
READ_METHODS = frozenset({"GET", "HEAD", "PROPFIND"})


@dataclass(frozen=True)
class ReadContext:
    # The authenticated user (None on anonymous public-share requests).
    user: User | None
    method: str
    # The WSGI environ: headers such as HTTP_USER_AGENT, the query string.
    environ: Mapping[str, Any] = dataclasses.field(repr=False, compare=False)

    @classmethod
    def of(cls, environ: Mapping[str, Any], user: User | None) -> ReadContext:
        return cls(user=user, method=environ.get("REQUEST_METHOD", ""), environ=environ)


@dataclass(frozen=True)
class Entry:
    """One member of a listing: the name it is shown under and the node behind it."""

    name: str
    node: Node


class ReadFilter:
    """No-op defaults; a filter overrides what it needs."""

    def listing(self, ctx: ReadContext, folder: Node, entries: list[Entry]) -> list[Entry]:
        """The members of `folder` as shown (Depth 1 PROPFIND)."""
        return entries

    def missing(self, ctx: ReadContext, parent: Node, name: str) -> Node | None:
        """A node to show for `name`, which does not exist in `parent` (read methods only)."""
        return None

    def check(self, ctx: ReadContext, node: Node) -> None:
        """Before a read of `node` as the request's target; raise GateRefused to refuse it."""

    def property_names(self, ctx: ReadContext, node: Node) -> list[str]:
        """Extra properties `node` has (allprop)."""
        return []

    def property_value(self, ctx: ReadContext, node: Node, name: str, value: object) -> object:
        """The value to answer for `name`: `value` is what the provider (or an earlier filter)
        computed, None if nothing did; return it unchanged to leave it alone."""
        return value


@functools.cache
def _load(paths: tuple[str, ...]) -> tuple[ReadFilter, ...]:
    return tuple(import_string(path) for path in paths)


def read_filters() -> tuple[ReadFilter, ...]:
    return _load(tuple(getattr(settings, "WEBDAV_READ_FILTERS", ())))


def filter_listing(ctx: ReadContext, folder: Node, entries: list[Entry]) -> list[Entry]:
    for read_filter in read_filters():
        entries = read_filter.listing(ctx, folder, entries)
    return entries


def filter_missing(ctx: ReadContext, parent: Node, name: str) -> Node | None:
    if ctx.method not in READ_METHODS:
        return None
    for read_filter in read_filters():
        found = read_filter.missing(ctx, parent, name)
        if found is not None:
            return found
    return None


def filter_check(ctx: ReadContext, node: Node) -> None:
    for read_filter in read_filters():
        read_filter.check(ctx, node)


def filter_property_names(ctx: ReadContext, node: Node) -> list[str]:
    names: list[str] = []
    for read_filter in read_filters():
        names += [n for n in read_filter.property_names(ctx, node) if n not in names]
    return names


def filter_property_value(ctx: ReadContext, node: Node, name: str, value: object) -> object:
    for read_filter in read_filters():
        value = read_filter.property_value(ctx, node, name, value)
    return value
