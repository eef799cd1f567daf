"""Training engine: optimizers and checkpoint compatibility."""
from .optimizers import *  # noqa: F401,F403
