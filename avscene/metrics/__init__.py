"""Evaluation metrics of avscene's tasks (separation: BSS Eval, SI-SDR, the on/off error)."""
