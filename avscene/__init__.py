"""avscene: self-supervised audio-visual scene analysis (Owens & Efros, ECCV 2018) in PyTorch."""

__version__ = "0.1.0"
