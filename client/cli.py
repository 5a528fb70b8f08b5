"""The `e2ee` command: the only place that prints or exits."""

import click

from client import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="e2ee")
def main() -> None:
    """End-to-end encrypted file sync and share for Nextcloud-compatible servers."""


@main.command()
def version() -> None:
    """Print the client version."""
    click.echo(f"e2ee {__version__}")
