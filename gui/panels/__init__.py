"""Side panels: the model tree, statistics (with the example input), the history
and the prunable-kinds menu."""
