"""What every `e2ee` command shares: exit statuses, one-line errors, atomic output files.

Exit status: 0 success; 2 usage error; 3 a verification or integrity failure (tampering, wrong
key, wrong mnemonic, a changed pinned key, or, online, server data the protocol does not allow:
a FormatError is the server's doing as much as a bad signature); 1 anything else. Failures print
exactly one line on stderr, never a traceback. ``e2ee offline …`` and the online commands use
the same machinery with their own prefix.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn, TypeVar

import click

from client.errors import E2EEError, FormatError, IntegrityError, UsageProblem

EXIT_OK, EXIT_OTHER, EXIT_USAGE, EXIT_INTEGRITY = 0, 1, 2, 3

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def atomic_output(path: Path, *, fsync: bool = True) -> Iterator[IO[bytes]]:
    """Write to a temporary file beside ``path``; rename it into place only on success, its
    bytes on disk first (``fsync=False``: in the OS cache only, as curl or rclone leave it)."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def one_line(message: str) -> str:
    return " ".join(str(message).split()) or "unknown error"


class OneLineUsageError(click.UsageError):
    """Click's usage errors, shown as one line instead of usage + hint + error."""

    prefix = "e2ee"

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"{self.prefix}: usage error: {one_line(self.format_message())}", err=True)


def one_line_command(prefix: str) -> type[click.Command]:
    """A click.Command class whose parse errors come out as one line under ``prefix``."""
    usage_error = type("UsageError", (OneLineUsageError,), {"prefix": prefix})

    class OneLineCommand(click.Command):
        def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
            try:
                return super().parse_args(ctx, args)
            except OneLineUsageError:
                raise
            except click.UsageError as exc:
                raise usage_error(exc.format_message(), ctx) from None

    OneLineCommand.usage_error = usage_error  # type: ignore[attr-defined]
    return OneLineCommand


def fail(prefix: str, code: int, message: str) -> NoReturn:
    click.echo(f"{prefix}: {one_line(message)}", err=True)
    raise SystemExit(code)


def report_errors(prefix: str, *, server_data: bool = False) -> Callable[[F], F]:
    """Turn every exception into one stderr line and the documented exit status. With
    ``server_data`` (the online commands) a FormatError is a verification failure (3): what
    was malformed came from the server; offline it is the operator's own file (1)."""
    integrity: tuple[type[Exception], ...] = (
        (IntegrityError, FormatError) if server_data else (IntegrityError,)
    )

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except (click.exceptions.Exit, click.Abort, click.UsageError, SystemExit):
                raise
            except UsageProblem as exc:
                fail(prefix, EXIT_USAGE, f"usage error: {exc}")
            except integrity as exc:
                fail(prefix, EXIT_INTEGRITY, f"verification failed: {type(exc).__name__}: {exc}")
            except E2EEError as exc:
                fail(prefix, EXIT_OTHER, f"error: {type(exc).__name__}: {exc}")
            except KeyboardInterrupt:
                fail(prefix, EXIT_OTHER, "interrupted")
            except OSError as exc:
                fail(prefix, EXIT_OTHER, f"error: {exc.strerror or exc}: {exc.filename or ''}")
            except Exception as exc:  # noqa: BLE001 - the CLI promises no traceback
                fail(prefix, EXIT_OTHER, f"internal error: {type(exc).__name__}")

        return wrapper  # type: ignore[return-value]

    return decorate


# --- the online commands' shared pieces -----------------------------------------------------

PREFIX = "e2ee"
Command = one_line_command(PREFIX)
reported = report_errors(PREFIX, server_data=True)
in_file = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)
out_file = click.Path(dir_okay=False, path_type=Path)


@dataclass
class Output:
    as_json: bool = False
    quiet: bool = False

    def result(self, obj: Any, text: str | Callable[[], str]) -> None:
        """Print ``obj`` as JSON with --json, else ``text`` (unless --quiet)."""
        if self.as_json:
            click.echo(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str))
        elif not self.quiet:
            click.echo(text() if callable(text) else text)


def output() -> Output:
    return click.get_current_context().find_object(Output) or Output()


def usage(message: str) -> NoReturn:
    raise Command.usage_error(message)  # type: ignore[attr-defined]


def session() -> Any:
    from client.keystore import Keystore
    from client.ops.session import Session

    return Session.open(Keystore())


def read_secret_file(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip()


class Group(click.Group):
    command_class = Command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            if isinstance(exc, Command.usage_error):  # type: ignore[attr-defined]
                raise
            raise Command.usage_error(exc.format_message(), ctx) from None  # type: ignore[attr-defined]

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            if isinstance(exc, Command.usage_error):  # type: ignore[attr-defined]
                raise
            raise Command.usage_error(exc.format_message(), ctx) from None  # type: ignore[attr-defined]
