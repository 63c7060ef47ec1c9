"""Audio signal representations: the separation network's STFT front end and its inverse.

The complex-valued transforms are :func:`avscene.audio.stft.stft` / :func:`~avscene.audio.stft.istft`
(not re-exported here, so ``avscene.audio.stft`` stays the module).
"""

from avscene.audio.stft import PAPER_SPECTROGRAM, SpectrogramConfig, analyze, synthesize

__all__ = ["PAPER_SPECTROGRAM", "SpectrogramConfig", "analyze", "synthesize"]
