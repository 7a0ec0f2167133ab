"""Real speed: inference benchmarks, sparse execution, speed advice, the cost lab."""
