"""Route every checkpoint mmengine reads through weights-only loading.

mmengine 0.10.7 reads checkpoints with ``torch.load(filename)`` and no
``weights_only`` argument (``Runner.load_checkpoint``, ``Runner.resume``,
``mmengine.runner.load_checkpoint``), so ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``
would make it unpickle arbitrary objects, i.e. run code. Its loaders are
chosen by path prefix from :class:`mmengine.runner.CheckpointLoader`;
:func:`register_weights_only_loaders` replaces them: local files and
``s3://``/``petrel://`` are read as bytes and loaded with
``weights_only=True``, ``http(s)://`` is downloaded to torch's hub cache and
loaded the same way, and the model-zoo schemes (``torchvision://``,
``open-mmlab://``, ``mmcls://``, ``pavi://``), which name other projects'
weights, are refused with a message.
"""
import hashlib
import os
import os.path as osp
from typing import Any
from urllib.parse import urlparse

from mmengine.fileio import get_file_backend
from mmengine.runner import CheckpointLoader

from dinov3_mm.utils.checkpoint_io import CheckpointError, load_weights_only

MODEL_ZOO_PREFIXES = ('modelzoo://', 'torchvision://', 'open-mmlab://',
                      'openmmlab://', 'mmcls://', 'pavi://')


def load_from_local_file(filename: str, map_location: Any = None) -> Any:
    """Local checkpoint file, ``weights_only=True``."""
    return load_weights_only(filename, map_location)


def load_from_http_url(filename: str, map_location: Any = None) -> Any:
    """Download to torch's hub cache once, then load ``weights_only=True``.

    The cached name starts with a hash of the whole URL, so two URLs ending
    in the same file name never share a cached file.
    """
    import torch.hub
    cache = osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(cache, exist_ok=True)
    url_hash = hashlib.sha256(filename.encode()).hexdigest()[:12]
    local = osp.join(cache,
                     f'{url_hash}-{osp.basename(urlparse(filename).path)}')
    if not osp.exists(local):
        torch.hub.download_url_to_file(filename, local, progress=False)
    return load_weights_only(local, map_location, name=filename)


def load_from_object_store(filename: str, map_location: Any = None) -> Any:
    """``s3://`` / ``petrel://`` bytes through mmengine's file backend."""
    data = get_file_backend(filename).get(filename)
    return load_weights_only(data, map_location, name=filename)


def load_from_model_zoo(filename: str, map_location: Any = None) -> Any:
    """Model-zoo names resolve to other projects' weights: refused."""
    raise CheckpointError(
        f'{filename}: model-zoo checkpoint names are not supported by '
        'dinov3_mm (they would be read without weights-only loading). '
        'Download the file and pass its local path or an http(s) URL.')


def register_weights_only_loaders() -> None:
    """Replace mmengine's checkpoint loaders by weights-only ones.

    Idempotent; ``import dinov3_mm`` calls it.
    """
    schemes = {
        '': load_from_local_file,
        ('http://', 'https://'): load_from_http_url,
        (r'(\S+\:)?s3://', r'(\S+\:)?petrel://'): load_from_object_store,
        MODEL_ZOO_PREFIXES: load_from_model_zoo,
    }
    for prefixes, loader in schemes.items():
        CheckpointLoader.register_scheme(prefixes, loader, force=True)
