"""TensorFlow reference of the authors' TF1 release graphs (see :mod:`graphs`); needs tensorflow."""
