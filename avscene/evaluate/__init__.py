"""Evaluation runners: functions that take trained models and a held-out dataset, score every
example and return a frozen result that can describe or write itself.

* :mod:`~avscene.evaluate.sync`: offset recovery on videos given a known offset, and the
  calibration of the scan's confidence.
* :mod:`~avscene.evaluate.separation`: Table 2 (on/off error, SDR, SIR, SAR) by voice pairing.
* :mod:`~avscene.evaluate.action`: video-level top-1 / top-5 and the confusion matrix.
"""
