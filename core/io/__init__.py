"""Getting models and pruned states in and out: checkpoints, recipes, torch's pruning format."""
