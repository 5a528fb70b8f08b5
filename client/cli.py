"""The `e2ee` command: the only place that prints or exits.

Global options ``--json`` (machine-readable output on stdout) and ``--quiet`` (nothing on
stdout but what was asked for) go before the command: ``e2ee --json ls Secret``. Exit status
0/2/3/1 and one stderr line on failure (:mod:`client.cli_support`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

# `import httpx` also loads httpx's own command line (httpx._main), and with it rich's syntax
# highlighting and pygments: ~25 ms of every `e2ee` command. This program never runs that
# command line; a None entry makes its import fail, and httpx then leaves it out.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import click

from client import __version__, cli_files, cli_recovery, cli_sharing  # noqa: F401 - registers commands
from client.cli_support import (
    Group,
    Output,
    in_file,
    out_file,
    output,
    read_secret_file,
    reported,
    session,
    usage,
)
from client.keystore import Keystore
from client.offline import offline
from client.ops import identity


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="e2ee")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but requested data.")
@click.pass_context
def main(ctx: click.Context, as_json: bool, quiet: bool) -> None:
    """End-to-end encrypted file sync and share for Nextcloud-compatible servers.

    The account and keys live in $E2EE_CONFIG_DIR (default: the user config dir).
    Exit status: 0 ok, 1 error, 2 usage error, 3 verification failed.
    """
    ctx.obj = Output(as_json=as_json, quiet=quiet)


main.add_command(offline)


# --- account and keys -----------------------------------------------------------------------


@main.command()
@click.argument("url")
@click.option("--user", "-u", required=True, help="The user id on the server.")
@click.option(
    "--password-file",
    type=in_file,
    help="A file holding the (app) password; else $E2EE_PASSWORD, else a prompt.",
)
@reported
def login(url: str, user: str, password_file: Path | None) -> None:
    """Sign in to URL, pin the server key (first use) and store the account."""
    if password_file is not None:
        password = read_secret_file(password_file)
    elif os.environ.get("E2EE_PASSWORD"):
        password = os.environ["E2EE_PASSWORD"]
    else:
        password = click.prompt("Password", hide_input=True, err=True)
    info = identity.login(Keystore(), url, user, password)
    output().result(info, f"signed in as {user} at {info['url']}")


@main.command()
@click.option(
    "--mnemonic-out",
    type=out_file,
    help="Write the 12 words to this file (0600) instead of showing them.",
)
@reported
def init(mnemonic_out: Path | None) -> None:
    """First device: create the key pair, get the certificate, upload the wrapped key."""
    if mnemonic_out is not None and mnemonic_out.exists():
        usage(f"{mnemonic_out} exists; refusing to overwrite it")
    with session() as s:
        created = identity.init(s)
    result: dict[str, Any] = {"fingerprint": created.certificate_fingerprint}
    if mnemonic_out is not None:
        fd = os.open(mnemonic_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(created.mnemonic + "\n")
        result["mnemonic_file"] = str(mnemonic_out)
        output().result(result, f"key created; the 12 words are in {mnemonic_out}")
        return
    result["mnemonic"] = created.mnemonic
    out = output()
    if out.as_json:
        out.result(result, "")
    else:  # the words are shown even with --quiet: this is the only time
        click.echo(created.mnemonic)
        if not out.quiet:
            click.echo("Write these 12 words down: they open your key on a new device.", err=True)


@main.command("add-device")
@click.option("--mnemonic-file", type=in_file, help="A file holding the 12 words; else a prompt.")
@reported
def add_device(mnemonic_file: Path | None) -> None:
    """Join this device to an account that has keys, with the 12 words."""
    if mnemonic_file is not None:
        words = read_secret_file(mnemonic_file)
    else:
        words = click.prompt("The 12 words", hide_input=True, err=True)
    with session() as s:
        fp = identity.add_device(s, words)
    output().result({"fingerprint": fp}, f"this device now holds the key ({fp})")


@main.group(cls=Group)
def mnemonic() -> None:
    """The 12 words that open the private key."""


@mnemonic.command("show")
@reported
def mnemonic_show() -> None:
    """Show the 12 words again (any device holding the key)."""
    with session() as s:
        words = identity.mnemonic_show(s)
    out = output()
    if out.as_json:
        out.result({"mnemonic": words}, "")
    else:
        click.echo(words)


@main.command()
@reported
def status() -> None:
    """Account, key state, pinned keys, recovery-key notice."""
    info = identity.status(Keystore())

    def text() -> str:
        lines = [
            f"account:      {info['user']} at {info['url']}",
            f"config:       {info['config_dir']}",
            f"server key:   {'pinned' if info['server_key_pinned'] else 'not pinned'}",
            f"device key:   {'present' if info['device_has_key'] else 'none (init/add-device)'}",
            f"server keys:  {'present' if info['keys_on_server'] else 'none'}",
        ]
        if "fingerprint" in info:
            lines.append(f"fingerprint:  {info['fingerprint']}")
        if "certificate" in info:
            lines.append(f"certificate:  {info['certificate']}")
        lines.append(f"revoked list: {info['revoked_list']}")
        lines.append(f"pinned users: {', '.join(info['pinned_users']) or '-'}")
        lines.append(f"encrypted:    {', '.join(info['encrypted_folders']) or '-'}")
        lines.append(
            f"recovery key: {info['recovery_key']}"
            if info["recovery_key"]
            else "recovery key: not enabled"
        )
        return "\n".join(lines)

    output().result(info, text)


for _command in (*cli_files.COMMANDS,):
    main.add_command(_command)
