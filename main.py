"""Start PruneScope: the window, or a headless command.

``python main.py`` opens the window on the demo, ``python main.py MODEL`` (or
``python main.py open MODEL``) on that model; ``stats``, ``prune`` and
``apply`` run headless in :mod:`core.cli`, which never imports Qt. Run
``python main.py COMMAND --help`` for each. Imports wait until the route is
known, so a headless command loads no GUI module.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

#: Sub-commands that run without the window (the same as ``core.cli.COMMANDS``).
HEADLESS_COMMANDS = ("stats", "prune", "apply", "eval", "finetune", "bench", "slim", "costlab")
PROG = "python main.py"


def main(argv: Sequence[str] | None = None) -> int:
    """Route ``argv`` (without the program name) to the headless CLI or to the window."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in HEADLESS_COMMANDS:
        from core.cli import main as run_headless

        return run_headless(args, prog=PROG)
    from gui.app import main as run_window  # "open MODEL" is handled there

    return run_window(args)


if __name__ == "__main__":
    raise SystemExit(main())
