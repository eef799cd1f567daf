"""Keep the output of deterministic pipeline steps (decoding, resizing) in
memory, so small datasets are decoded once instead of every epoch."""
import copy
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS

#: The results keys that identify a sample's files.
SOURCE_KEYS = ('img_path', 'seg_map_path')


def flatten_cached(steps: Sequence) -> list:
    """``steps`` (config dicts or transforms) with every
    :class:`CachedTransforms` replaced by the steps it wraps, for uses that
    read a pipeline step by step or run each input once (inference,
    export)."""
    flat = []
    for step in steps:
        if isinstance(step, CachedTransforms):
            flat.extend(step.transforms)
        elif isinstance(step, dict) and str(step.get('type', '')).split(
                '.')[-1] == 'CachedTransforms':
            flat.extend(step.get('transforms', []))
        else:
            flat.append(step)
    return flat


def _nbytes(results: dict) -> int:
    """Bytes of the arrays in ``results`` (the rest is negligible)."""
    return sum(v.nbytes for v in results.values()
               if isinstance(v, np.ndarray))


@TRANSFORMS.register_module()
class CachedTransforms(BaseTransform):
    """Run ``transforms`` once per sample and replay their output afterwards.

    Wrap only the deterministic start of a pipeline, e.g. ``LoadImage`` and a
    resize: a random transform inside would repeat its first draw forever.
    A sample is known by its files (``img_path``, ``seg_map_path``); the
    keys the steps added or replaced are stored, and each replay merges a
    deep copy of them into the sample's new results, so per-call keys
    (``sample_idx``) stay current and later in-place augmentations never
    change the cache. Every data loader worker keeps its own cache, filled
    during the first epoch, so use ``persistent_workers=True``, or
    ``num_workers=0`` (one cache, in the training process) where the rest of
    the pipeline is cheap.

    The cache stops growing (it never evicts) once ``max_bytes`` of arrays
    are stored; the remaining samples are then computed every time.

    Args:
        transforms (list[dict | callable]): The wrapped steps.
        max_bytes (int): Array bytes the cache may hold per process.
            Defaults to 2 GiB.

    Example::

        train_pipeline = [
            dict(type='CachedTransforms', transforms=[
                dict(type='LoadImage'),
                dict(type='ResizeKeepRatioPad', size=64)]),
            dict(type='Albumentations', transforms=[...]),
            dict(type='PackClsInputs'),
        ]
    """

    def __init__(self,
                 transforms: Sequence[Union[dict, callable]],
                 max_bytes: int = 2 << 30) -> None:
        if max_bytes < 0:
            raise ValueError(f'max_bytes={max_bytes} must be >= 0')
        self.transforms = [TRANSFORMS.build(t) if isinstance(t, dict) else t
                           for t in transforms]
        self.max_bytes = max_bytes
        self._cache = {}
        self._bytes = 0

    @staticmethod
    def _key(results: dict) -> Optional[Tuple]:
        key = tuple(results.get(k) for k in SOURCE_KEYS)
        return None if all(k is None for k in key) else key

    @property
    def cached_samples(self) -> int:
        """Samples held by this process's cache."""
        return len(self._cache)

    def transform(self, results: dict) -> Optional[dict]:
        """Replay the cached output of ``results``' sample, or compute and
        (space allowing) keep it."""
        key = self._key(results)
        if key is not None and key in self._cache:
            return {**results, **copy.deepcopy(self._cache[key])}
        given = dict(results)
        out = results
        for step in self.transforms:
            out = step(out)
            if out is None:
                return None
        if key is None:
            return out
        made = {k: v for k, v in out.items()
                if k not in given or v is not given[k]}
        size = _nbytes(made)
        if self._bytes + size <= self.max_bytes:
            self._cache[key] = copy.deepcopy(made)
            self._bytes += size
        return out

    def __repr__(self) -> str:
        steps: List[str] = [repr(t) for t in self.transforms]
        return (f'{self.__class__.__name__}(transforms=[{", ".join(steps)}], '
                f'max_bytes={self.max_bytes})')
