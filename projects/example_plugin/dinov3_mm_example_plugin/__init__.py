"""Example dinov3_mm plugin.

Installing this package makes ``dict(type='ExampleLinearHead', ...)`` buildable
from any dinov3_mm config without ``custom_imports``: its entry point in the
``dinov3_mm.plugins`` group names this module, which dinov3_mm imports the
first time a registry is queried.
"""
from .heads import ExampleLinearHead

__all__ = ['ExampleLinearHead']
__version__ = '0.1.0'
