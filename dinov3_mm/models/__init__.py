"""Models: backbones, necks, heads, losses and top-level models."""
from .backbones import *  # noqa: F401,F403
