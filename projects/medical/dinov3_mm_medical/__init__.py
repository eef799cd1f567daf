"""dinov3_mm medical plugin.

Volume readers (NIfTI, DICOM series), CT windowing and MRI intensity
transforms, 2D / 2.5D slice datasets, a synthetic MRI-like volume generator
and slice-batched volume inference with NIfTI output and per-volume Dice.

Importing the package itself is light (numpy only); the registered
components live in :mod:`dinov3_mm_medical.components`, which the
``dinov3_mm.plugins`` entry point names.
"""
__version__ = '0.1.0'
