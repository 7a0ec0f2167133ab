"""PruneScope's headless command line: ``stats``, ``prune``, ``apply``, ``eval``,
``finetune``, ``bench``, ``slim`` and ``costlab`` (:data:`COMMANDS`). Never imports Qt.

``main.py`` hands these sub-commands to :func:`main` and everything else
(no arguments, a model file, ``open MODEL``) to the window. Modules:
:mod:`~core.cli.parser` (argparse, with the pruning methods' options generated
from their schemas by :mod:`~core.cli.options`), :mod:`~core.cli.commands`
(what each command does), :mod:`~core.cli.layers` (``--layers`` and ``--cap``
patterns), :mod:`~core.cli.progress` (rich progress bars, Ctrl+C as a cancel)
and :mod:`~core.cli.tables` (statistics as tables or JSON).

Exit status: 0 success, 1 failure (one line on stderr, the traceback only with
``--debug``; a cancel says "cancelled"), 2 bad usage.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

from core.cli.commands import COMMAND_RUNNERS, Command
from core.cli.options import UsageError
from core.cli.parser import COMMANDS, build_parser
from core.cli.progress import Terminal, interrupt_cancels
from core.cli.speed import run_bench, run_costlab, run_slim
from core.cli.training import run_eval, run_finetune
from core.common.errors import JobCancelled, PruningError
from core.common.jobs import CancelToken

#: Every headless command's runner, by name (the same names as :data:`COMMANDS`).
RUNNERS: dict[str, Command] = {
    **COMMAND_RUNNERS,
    "eval": run_eval,
    "finetune": run_finetune,
    "bench": run_bench,
    "slim": run_slim,
    "costlab": run_costlab,
}

#: Exit statuses.
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None, *, prog: str = "prunescope") -> int:
    """Run one headless command (``argv`` without the program name); returns the exit status."""
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) or bad usage (2); argparse already printed
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    terminal = Terminal(quiet=args.quiet)
    token = CancelToken()
    try:
        with interrupt_cancels(token):
            return RUNNERS[args.command](args, token, terminal)
    except UsageError as exc:
        args.command_parser.print_usage(sys.stderr)
        _error(f"{prog} {args.command}: error: {exc}")
        return EXIT_USAGE
    except (JobCancelled, KeyboardInterrupt):
        _error(f"{prog}: cancelled")
        return EXIT_FAILURE
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        _error(f"{prog}: error: {error_line(exc)}")
        return EXIT_FAILURE


def error_line(exc: BaseException) -> str:
    """The error as one line: the message (with its type unless it is the engine's or the OS's)."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, PruningError | OSError):
        return message
    return f"{type(exc).__name__}: {message}"


def _error(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


__all__ = ["COMMANDS", "EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "error_line", "main"]
