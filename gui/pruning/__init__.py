"""The pruning controls: one layer's method pages and amount, and global pruning."""
