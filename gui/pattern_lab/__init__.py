"""The Pattern lab: one seeded random matrix pruned five ways (unstructured, by rows, by
columns, N:M, blocks) side by side, for teaching; exports are figures for slides."""
