"""Prediction with packages: batched per-task inference, file/folder/video drivers, ONNX runners.

``hrnet.predict.api.ModelPackage`` is what :func:`hrnet.load_package` returns; ``hrnet predict``
calls its :meth:`~hrnet.predict.api.ModelPackage.predict_files`. Nothing here imports Lightning,
DVC, Ray or the training code.
"""
