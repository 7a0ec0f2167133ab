"""What a pruned model is made of and costs: statistics (counts, structure, FLOPs, bytes)."""
