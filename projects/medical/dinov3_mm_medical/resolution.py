"""The slice resolution a model was trained at, and inference at it.

Training sees slices at the base scale of its resize step (e.g.
``RandomRescale(scale=256)``: long side 256 times a random ratio), testing
at the size of the test pipeline's resize (``ResizeKeepRatioPad(size=256)``:
long side 256). When a test config and the training differ (a checkpoint
trained with ``--cfg-options ... scale=64`` and inferred with the recipe's
256), :func:`match_training_size` sets the test resize to the training size
and says so; the segmentor still returns labels at each slice's original
size.
"""
from typing import List, Optional, Tuple

Size = Tuple[int, int]

#: Resize steps and the argument holding their (base) size, in the order
#: they are looked for.
RESIZE_ARGS = (('RandomRescale', 'scale'), ('RandomResize', 'scale'),
               ('Resize', 'scale'), ('ResizeKeepRatioPad', 'size'))
#: Crop steps, whose output size stands for the training size when the
#: pipeline does not resize.
CROP_ARGS = (('RandomCropCatRatio', 'crop_size'), ('RandomCrop', 'crop_size'))
#: Test resize steps whose size can be set.
TEST_RESIZE_ARGS = (('ResizeKeepRatioPad', 'size'), ('Resize', 'scale'))


def _type_name(step) -> str:
    kind = step.get('type') if isinstance(step, dict) else type(step)
    name = kind if isinstance(kind, str) else getattr(kind, '__name__', '')
    return name.split('.')[-1]


def _as_size(value) -> Optional[Size]:
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return (int(value[0]), int(value[1]))
    return None


def _find(pipeline, names) -> Optional[Tuple[int, str]]:
    """Index and argument of the first step of one of ``names``."""
    for name, arg in names:
        for index, step in enumerate(pipeline or []):
            if isinstance(step, dict) and _type_name(step) == name and \
                    _as_size(step.get(arg)) is not None:
                return index, arg
    return None


def pipeline_size(pipeline: List[dict], test: bool = False
                  ) -> Optional[Size]:
    """The ``(h, w)`` slices are resized to by a pipeline of config dicts.

    Args:
        pipeline (list[dict]): Transform configs.
        test (bool): A test pipeline: only the resize steps it can set
            (``ResizeKeepRatioPad``, ``Resize``). Otherwise the base scale
            of the first resize step, else the size of a crop.

    Returns:
        tuple[int, int] | None: None when no step says.
    """
    found = _find(pipeline, TEST_RESIZE_ARGS if test else RESIZE_ARGS)
    if found is None and not test:
        found = _find(pipeline, CROP_ARGS)
    if found is None:
        return None
    index, arg = found
    return _as_size(pipeline[index][arg])


def _train_pipeline(cfg) -> Optional[List[dict]]:
    loader = cfg.get('train_dataloader') or {}
    dataset = loader.get('dataset') or {}
    return dataset.get('pipeline')


def training_size(model) -> Tuple[Optional[Size], str]:
    """The slice size ``model`` was trained at, and where it was read.

    The training config saved in the checkpoint (``meta['cfg']``, written
    by mmengine's Runner) wins; without it the given config's
    ``train_dataloader`` pipeline is used.

    Returns:
        tuple: ``(size or None, 'checkpoint' | 'config')``.
    """
    text = (getattr(model, 'checkpoint_meta', None) or {}).get('cfg')
    if isinstance(text, str) and text.strip():
        try:
            from mmengine.config import Config
            saved = Config.fromstring(text, '.py')
            size = pipeline_size(_train_pipeline(saved))
            if size is not None:
                return size, 'checkpoint'
        except Exception:  # an unparsable saved config: use the given one
            pass
    return pipeline_size(_train_pipeline(model.cfg)), 'config'


def match_training_size(model, keep_test_size: bool = False
                        ) -> Optional[str]:
    """Make the test pipeline of ``model.cfg`` resize slices to the
    training size.

    Args:
        model: A model from ``init_model`` (``cfg``, ``checkpoint_meta``).
        keep_test_size (bool): Leave the test size as configured and only
            warn. Defaults to False.

    Returns:
        str | None: A note naming both sizes when they differ, else None.
    """
    trained, source = training_size(model)
    pipeline = model.cfg.test_dataloader.dataset.pipeline
    found = _find(pipeline, TEST_RESIZE_ARGS)
    if trained is None or found is None:
        return None
    index, arg = found
    tested = _as_size(pipeline[index][arg])
    if tested == trained:
        return None
    where = ('the checkpoint\'s training config' if source == 'checkpoint'
             else 'the config\'s train pipeline')
    sizes = (f'the test pipeline resizes slices to {_fmt(tested)} but the '
             f'model was trained at {_fmt(trained)} ({where})')
    if keep_test_size:
        return (f'warning: {sizes}; inferring at {_fmt(tested)} as asked '
                '(--keep-test-size).')
    pipeline[index][arg] = (trained[0] if trained[0] == trained[1] else
                            list(trained))
    return (f'note: {sizes}; inferring at {_fmt(trained)} (labels are '
            'returned at each volume\'s own resolution; --keep-test-size '
            'keeps the test size).')


def _fmt(size: Size) -> str:
    return f'{size[0]}x{size[1]}'
