"""Qt-free computation behind the views: heatmap reductions and the pattern-lab figure."""
