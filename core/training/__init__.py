"""Accuracy in the loop: evaluation data, evaluation, masked fine-tuning with distillation."""
