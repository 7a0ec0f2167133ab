"""The pruning engine: sessions, methods, masks, the vault of original values, undo history."""
