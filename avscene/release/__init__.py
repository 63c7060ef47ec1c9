"""The authors' released networks (``multisensory-nets.zip``, TensorFlow 1 checkpoints) in avscene.

* :mod:`~avscene.release.tf_checkpoint`: reads TF checkpoints without TensorFlow.
* :mod:`~avscene.release.variables`: which TF variable becomes which parameter, and what is ignored.
* :mod:`~avscene.release.convert`: one checkpoint -> an avscene model, exactly.
* :mod:`~avscene.release.importer`: ``avscene import-tf``: the zip, folder or prefix -> the model store.
"""
