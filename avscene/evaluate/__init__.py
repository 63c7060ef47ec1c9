"""Evaluation runners: functions that take trained models (or their checkpoints) and a held-out
dataset, score every example with :mod:`avscene.metrics` and return a frozen table that can
write itself (separation: :mod:`avscene.evaluate.separation`, Table 2)."""
