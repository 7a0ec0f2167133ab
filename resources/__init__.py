"""Package data for PruneScope: the digits data set and the demo models' weights."""
