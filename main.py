"""Start PruneScope: ``python main.py [--screenshot PATH] [--quit-after MS]``."""

from gui.app import main

if __name__ == "__main__":
    raise SystemExit(main())
