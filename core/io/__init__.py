"""Getting models and pruned states in and out: the loader, checkpoints in every format,
recipes, torch's pruning format. The public names are re-exported by ``core``."""
