"""PruneScope's Qt front end (PySide6 + pyqtgraph). The engine lives in ``core``."""
