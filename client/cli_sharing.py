"""`e2ee share`, `unshare` and `keys …` (registered on the main group by client.cli)."""

from __future__ import annotations

from pathlib import Path

import click

from client.cli_files import COMMANDS, command
from client.cli_support import Command, Group, output, reported, session
from client.ops import keys as key_ops
from client.ops import share as share_ops


@command("share")
@click.argument("remote_dir")
@click.argument("user")
@reported
def share(remote_dir: str, user: str) -> None:
    """Share a topmost encrypted folder with USER (rotates the folder key)."""
    with session() as s:
        result = share_ops.share(s, remote_dir, user)
    output().result(
        result, f"shared {result['path']} with {user}; members: {', '.join(result['members'])}"
    )


@command("unshare")
@click.argument("remote_dir")
@click.argument("user")
@reported
def unshare(remote_dir: str, user: str) -> None:
    """Remove USER from a shared folder; nothing written afterwards is readable to them.

    Files from before the removal stay readable to USER if they kept copies or keys.
    """
    with session() as s:
        result = share_ops.unshare(s, remote_dir, user)
    output().result(result, f"removed {user} from {result['path']}")


@click.group("keys", cls=Group)
def keys() -> None:
    """Safety numbers of users' keys, to compare out of band."""


@keys.command("fingerprint", cls=Command)
@click.argument("user", required=False)
@reported
def fingerprint(user: str | None) -> None:
    """Show the safety number of USER (default: yourself)."""
    with session() as s:
        who, number = key_ops.key_fingerprint(s, user)
    output().result({"user": who, "fingerprint": number}, f"{who}: {number}")


@keys.command("verify", cls=Command)
@click.argument("user")
@click.argument("number", metavar="FINGERPRINT")
@reported
def verify(user: str, number: str) -> None:
    """Check USER's safety number against FINGERPRINT (exit status 3 if it differs)."""
    with session() as s:
        actual = key_ops.key_verify(s, user, number)
    output().result(
        {"user": user, "fingerprint": actual, "verified": True}, f"ok: the key of {user} matches"
    )


COMMANDS.append(keys)


@command("sync")
@click.argument("local_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("remote_dir")
@reported
def sync(local_dir: Path, remote_dir: str) -> None:
    """Two-way sync of LOCAL_DIR with REMOTE_DIR (a folder of an encrypted tree).

    Conflicts keep both copies: the local one as "name (conflict USER TIME).ext".
    """
    from client.ops import sync as sync_ops

    with session() as s:
        report = sync_ops.sync(s, local_dir, remote_dir)
    summary = report.as_dict()

    def text() -> str:
        if not report.changed:
            return "in sync: nothing to do"
        return ", ".join(f"{len(v)} {k.replace('_', ' ')}" for k, v in summary.items() if v)

    output().result(summary, text)


@command("filedrop")
@click.argument("link_url")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@reported
def filedrop(link_url: str, file: Path) -> None:
    """Upload FILE into a file-drop link, as an anonymous person (no account needed)."""
    from client.ops import filedrop as drop

    name = drop.filedrop(link_url, file)
    output().result({"name": name, "link": link_url}, f"dropped {name}")
