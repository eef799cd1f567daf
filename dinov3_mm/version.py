"""Version of the dinov3_mm package."""

__version__ = '0.1.0'
