"""What every part of the engine builds on: errors, jobs (progress and cancel), raw array
access, torch's thread count set for a while (:mod:`core.common.threads`)."""
