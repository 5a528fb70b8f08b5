"""`e2ee` commands on folders and files (registered on the main group by client.cli)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import click

from client.cli_support import Command, output, reported, session
from client.ops import folders, transfer

#: Transfers above this size get a progress bar (on stderr, never with --quiet or --json).
PROGRESS_THRESHOLD = 1_000_000

COMMANDS: list[click.Command] = []


def command(name: str) -> Callable[[Callable[..., None]], click.Command]:
    def register(func: Callable[..., None]) -> click.Command:
        cmd = click.command(name, cls=Command)(func)
        COMMANDS.append(cmd)
        return cmd

    return register


@contextmanager
def progress_bar(label: str, total: int | None) -> Iterator[Callable[[int], None] | None]:
    out = output()
    if out.quiet or out.as_json or total is None or total <= PROGRESS_THRESHOLD:
        yield None
        return
    # rich only when a bar may be drawn: importing it costs ~20 ms of every command
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    if not console.is_terminal:  # a pipe, a log: no bar, so a failure stays one stderr line
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


@command("encrypt")
@click.argument("remote_dir")
@reported
def encrypt(remote_dir: str) -> None:
    """Make an empty folder (created if missing) a topmost encrypted folder."""
    with session() as s:
        file_id = folders.encrypt(s, remote_dir)
    output().result({"path": remote_dir.strip("/"), "file_id": file_id}, f"encrypted {remote_dir}")


@command("mkdir")
@click.argument("remote_dir")
@click.option(
    "--parents", "-p", is_flag=True, help="Create missing parents; no error if it exists."
)
@reported
def mkdir(remote_dir: str, parents: bool) -> None:
    """Create a folder (encrypted when inside an encrypted folder)."""
    with session() as s:
        path = folders.mkdir(s, remote_dir, parents=parents)
    output().result({"path": path}, f"created {path}")


@command("put")
@click.argument("local", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("remote")
@reported
def put(local: Path, remote: str) -> None:
    """Upload LOCAL to REMOTE (a file path, or a folder to put it in)."""
    with session() as s, progress_bar(f"put {local.name}", local.stat().st_size) as advance:
        path = transfer.put(s, local, remote, advance)
    output().result({"path": path, "size": local.stat().st_size}, f"uploaded {path}")


@command("get")
@click.argument("remote")
@click.argument("local", type=click.Path(path_type=Path))
@click.option(
    "--no-fsync",
    is_flag=True,
    help="Finish once the file is in the OS cache, not on disk (as curl or rclone do): faster, "
    "but a power cut right after may leave LOCAL empty or missing.",
)
@reported
def get(remote: str, local: Path, no_fsync: bool) -> None:
    """Download REMOTE to LOCAL (a file path, or a folder to put it in); verified first, and on
    disk (fsynced) before it takes its name."""
    with session() as s:
        loc = transfer.locate(s, remote)
        total = transfer.remote_size(s, loc) if loc.exists else None
        with progress_bar(f"get {loc.name}", total) as advance:
            written = transfer.get(s, remote, local, advance, fsync=not no_fsync)
    output().result({"path": str(written), "size": written.stat().st_size}, f"saved {written}")


def _when(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else "-"


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000  # type: ignore[assignment]
    return str(size)


@command("ls")
@click.argument("remote", default="")
@reported
def ls(remote: str) -> None:
    """List a folder with clear names, sizes and dates."""
    with session() as s:
        items = folders.ls(s, remote)

    def text() -> str:
        lines = []
        for item in items:
            flag = "E" if item.encrypted else "-"
            notes = "  (missing on server)" if item.missing else ""
            notes += "  (file drop: anonymous sender)" if item.dropped else ""
            name = item.name + ("/" if item.type == "folder" else "")
            size = _size(item.size)
            lines.append(f"{flag} {size:>10}  {_when(item.modified)}  {name}{notes}")
        return "\n".join(lines) if lines else "(empty)"

    output().result([item.as_dict() for item in items], text)


@command("rm")
@click.argument("remote")
@click.option("--recursive", "-r", is_flag=True, help="Remove a folder with its content.")
@reported
def rm(remote: str, recursive: bool) -> None:
    """Remove a file or folder."""
    with session() as s:
        path = folders.rm(s, remote, recursive=recursive)
    output().result({"path": path}, f"removed {path}")


@command("mv")
@click.argument("source")
@click.argument("destination")
@reported
def mv(source: str, destination: str) -> None:
    """Move or rename inside one encrypted tree (or between plain folders)."""
    with session() as s:
        path = folders.mv(s, source, destination)
    output().result({"path": path}, f"moved to {path}")
