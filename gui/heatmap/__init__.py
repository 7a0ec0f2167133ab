"""The weight views: the heatmap with its mask painting, the layer views and the
magnitude histogram."""
