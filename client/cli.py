"""The `e2ee` command: the only place that prints or exits."""

import click

from client import __version__
from client.offline import offline


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="e2ee")
def main() -> None:
    """End-to-end encrypted file sync and share for Nextcloud-compatible servers."""


main.add_command(offline)
