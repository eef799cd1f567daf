"""Training engine: the Runner, loops, hooks, optimizers and config checks."""
from .optimizers import *  # noqa: F401,F403
from .runner import *  # noqa: F401,F403
from .hooks import *  # noqa: F401,F403
from . import hooks, optimizers, runner
from .cli_options import CfgOptionsAction
from .config_check import ConfigError, check_config
from .fsdp import FSDPWrapper

__all__ = [
    name for package in (optimizers, runner, hooks)
    for name in package.__all__
] + ['CfgOptionsAction', 'ConfigError', 'check_config', 'FSDPWrapper']
