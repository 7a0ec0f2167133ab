"""What every part of the engine builds on: errors, jobs (progress and cancel), raw array access."""
