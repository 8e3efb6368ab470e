"""Command line: ``sbc run``, ``sweep``, ``mutants``, ``fit``, ``list``, ``summary``, ``report``.

The parser is built from shared option groups (:mod:`sbc.cli.options`); each command builds
its run from the options and calls a workflow (:mod:`sbc.cli.commands`). Bad input of any
kind is one line on standard error and exit code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

from sbc.cli.commands import COMMANDS
from sbc.cli.options import UsageError, parser
from sbc.errors import SettingError
from sbc.results.store import StoreError

__all__ = ["UsageError", "console", "main"]


def _one_line(message: object) -> str:
    """The message on one line: line breaks shown escaped."""
    return str(message).replace("\r", "\\r").replace("\n", "\\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sbc`` command; returns the exit code."""
    from sbc.engine.execute import RunError

    try:
        args = parser().parse_args(argv)
        COMMANDS[args.command](args)
    except (UsageError, SettingError, StoreError) as exc:
        print(f"sbc: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except RunError as exc:
        print(f"sbc: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into a pager or `head` that closed early
        sys.stderr.close()
    except KeyboardInterrupt:  # every finished simulation is already on disk
        print(
            "sbc: interrupted; finished simulations are saved: run the same command again "
            "to resume",
            file=sys.stderr,
        )
        return 130
    return 0


def console() -> NoReturn:
    """The ``sbc`` command: :func:`main`, then its idle workers stopped, then exit."""
    code = main()
    execute = sys.modules.get("sbc.engine.execute")  # only commands that ran workers imported it
    if execute is not None:
        execute.release_workers()
    sys.exit(code)


if __name__ == "__main__":
    console()
