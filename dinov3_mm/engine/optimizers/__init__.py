"""Optimizer wrappers and constructors."""
from .amp_optim_wrapper import AmpOptimWrapper
from .layer_decay_constructor import LayerDecayOptimWrapperConstructor

__all__ = ['AmpOptimWrapper', 'LayerDecayOptimWrapperConstructor']
