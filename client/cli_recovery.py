"""`e2ee recovery …`: the administrator's offline recovery key (registered by client.cli).

- ``create --out DIR`` (offline): the key pair; the private key only in DIR, wrapped under 24
  words printed once for paper storage; a CSR for ``manage.py recovery enable --csr FILE``.
- ``decrypt --key DIR --user U --folder REMOTE_DIR --out LOCAL_DIR``: with the words and an
  administrator's `e2ee login`, decrypt a user's folder tree from the ciphertext the server
  serves to administrators.
- ``drop REMOTE_DIR`` (a user, after recovery was disabled): a new folder key without it.
"""

from __future__ import annotations

from pathlib import Path

import click

from client.cli_files import COMMANDS
from client.cli_support import Command, Group, output, read_secret_file, reported, session
from client.errors import UsageProblem
from client.keystore import Keystore
from client.ops import recover
from client.ops import recovery as recovery_ops
from client.ops.share import _root_at, rotate

_dir = click.Path(file_okay=False, path_type=Path)
_in_file = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)


@click.group("recovery", cls=Group)
def recovery() -> None:
    """The administrator's offline recovery key."""


@recovery.command("create", cls=Command)
@click.option("--out", "out", type=_dir, required=True, help="A new, empty directory.")
@reported
def create(out: Path) -> None:
    """Offline: create the recovery key in OUT and print its 24 words (shown only once)."""
    created = recover.create(out)
    result = {"id": created.user_id, "csr": str(created.csr_path), "phrase": created.phrase}
    printer = output()
    if printer.as_json:
        printer.result(result, "")
        return
    click.echo(created.phrase)  # shown even with --quiet: this is the only time
    if not printer.quiet:
        click.echo(
            f"Write these 24 words on paper and keep them offline: with {out} they open the "
            f"recovery key {created.user_id}. Give {created.csr_path} to "
            "`manage.py recovery enable --csr FILE` on the server.",
            err=True,
        )


@recovery.command("decrypt", cls=Command)
@click.option("--key", "key_dir", type=_dir, required=True, help="The recovery key directory.")
@click.option("--user", "user", required=True, help="Whose folder to recover.")
@click.option("--folder", "folder", required=True, help="The user's topmost encrypted folder.")
@click.option("--out", "out", type=_dir, required=True, help="A new local directory.")
@click.option("--phrase-file", type=_in_file, help="A file holding the 24 words; else a prompt.")
@reported
def decrypt(key_dir: Path, user: str, folder: str, out: Path, phrase_file: Path | None) -> None:
    """Decrypt USER's FOLDER tree with the recovery key (needs `e2ee login` as an admin)."""
    if phrase_file is not None:
        phrase = read_secret_file(phrase_file)
    else:
        phrase = click.prompt("The 24 words", hide_input=True, err=True)
    private_key = recover.open_key(key_dir, phrase)
    done = recover.decrypt(Keystore(), private_key, user, folder, out)
    output().result(
        {"folders": done.folders, "files": done.files, "bytes": done.bytes, "out": str(out)},
        f"recovered {done.files} file(s) in {done.folders} folder(s) into {out}",
    )


@recovery.command("drop", cls=Command)
@click.argument("remote_dir")
@reported
def drop(remote_dir: str) -> None:
    """After recovery was disabled: give REMOTE_DIR a new key that the recovery key lacks."""
    with session() as s:
        if recovery_ops.offer(s).enabled:
            raise UsageProblem("recovery is still enabled on this server: it would be re-added")
        root = _root_at(s, remote_dir)
        folders = rotate(s, root, dict(root.certificates))
    output().result(
        {"path": root.clear_path, "folders_rekeyed": folders},
        f"{root.clear_path}: new folder key, without the recovery key ({folders} folder(s))",
    )


COMMANDS.append(recovery)
