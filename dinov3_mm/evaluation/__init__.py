"""Evaluation: metrics registered in ``METRICS`` (scope ``dinov3_mm``)."""
from .metrics import *  # noqa: F401,F403
