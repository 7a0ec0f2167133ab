"""PruneScope's engine: pruning sessions, methods, history, statistics. Never imports Qt."""
