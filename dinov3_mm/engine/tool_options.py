"""Config changes behind ``tools/test.py --tta / --show-dir`` and
``tools/train.py --auto-scale-lr / --compile / --fsdp``."""
import copy
import os.path as osp
from typing import Optional

from mmengine.config import Config, ConfigDict

from dinov3_mm.models.classifiers import DINOv3Classifier
from dinov3_mm.models.segmentors import DINOv3Segmentor
from dinov3_mm.registry import MODELS
from dinov3_mm.utils.cli import UserError

#: Views of the default classification TTA: the image and its mirror image.
FLIP_VIEWS = (dict(type='RandomFlip', prob=0.),
              dict(type='RandomFlip', prob=1., direction='horizontal'))


def _model_class(cfg: Config) -> Optional[type]:
    model_type = cfg.model.get('type') if cfg.get('model') else None
    if isinstance(model_type, type):
        return model_type
    return MODELS.get(model_type) if isinstance(model_type, str) else None


def flip_tta_pipeline(test_pipeline, config_path: str) -> list:
    """The test pipeline with its packing step run once per view of
    :data:`FLIP_VIEWS` (mmcv's ``TestTimeAug``)."""
    steps = [copy.deepcopy(step) for step in test_pipeline or []]
    if not steps or not str(steps[-1].get('type', '')).startswith('Pack'):
        raise UserError(
            f'{config_path}: --tta needs a test pipeline that ends with a '
            'Pack... step; add `tta_pipeline` (with TestTimeAug) to the '
            'config.')
    views = [ConfigDict(view) for view in FLIP_VIEWS]
    return steps[:-1] + [
        ConfigDict(type='TestTimeAug', transforms=[views, [steps[-1]]])
    ]


def enable_tta(cfg: Config, config_path: str) -> str:
    """Switch the config to test-time augmentation.

    * ``tta_model`` and ``tta_pipeline`` in the config: mmengine's way, the
      model wrapped in ``tta_model`` and the test set read with
      ``tta_pipeline``;
    * a segmentor (:class:`~dinov3_mm.models.DINOv3Segmentor`): its own
      flip TTA, ``model.test_cfg.flip = True`` (logits of the image and of
      its mirror image averaged);
    * a classifier (:class:`~dinov3_mm.models.DINOv3Classifier`):
      :class:`~dinov3_mm.models.tta.ClsTTAModel` over the test pipeline with
      a horizontal-flip ``TestTimeAug`` (probabilities averaged).

    Args:
        cfg (Config): The merged config (changed in place).
        config_path (str): Its file, for messages.

    Returns:
        str: What was switched on, for the log.

    Raises:
        UserError: The model is neither and the config has no ``tta_model``.
    """
    loader = cfg.get('test_dataloader')
    if not loader or 'dataset' not in loader:
        raise UserError(f'{config_path} has no test_dataloader.dataset; '
                        '--tta augments the test set.')
    if cfg.get('tta_model') is not None or cfg.get('tta_pipeline'):
        if cfg.get('tta_model') is None or not cfg.get('tta_pipeline'):
            raise UserError(f'{config_path}: --tta needs both `tta_model` and '
                            '`tta_pipeline`; the config has only one.')
        tta_model, pipeline = cfg.pop('tta_model'), cfg.pop('tta_pipeline')
        how = f"{tta_model.get('type')} with the config's tta_pipeline"
    else:
        model_cls = _model_class(cfg)
        if model_cls is not None and issubclass(model_cls, DINOv3Segmentor):
            cfg.model.setdefault('test_cfg', ConfigDict())
            cfg.model.test_cfg = ConfigDict(cfg.model.test_cfg or {})
            cfg.model.test_cfg.flip = True
            return 'segmentor flip TTA (model.test_cfg.flip=True)'
        if model_cls is None or not issubclass(model_cls, DINOv3Classifier):
            name = getattr(model_cls, '__name__', cfg.get('model', {}).get(
                'type'))
            raise UserError(
                f'{config_path}: --tta knows classifiers and segmentors, not '
                f'{name}; add `tta_model` and `tta_pipeline` (mmengine '
                'TestTimeAug) to the config, or test without --tta.')
        tta_model = ConfigDict(type='ClsTTAModel')
        pipeline = flip_tta_pipeline(loader.dataset.get('pipeline'),
                                     config_path)
        how = 'ClsTTAModel over the image and its horizontal flip'
    tta_model['module'] = cfg.model
    cfg.model = tta_model
    loader.dataset.pipeline = pipeline
    return how


def apply_show_dir(cfg: Config, show_dir: str) -> Config:
    """Add a :class:`~dinov3_mm.engine.hooks.PredDrawHook` writing the
    drawn test predictions to ``show_dir`` (relative to the current
    folder)."""
    hooks = list(cfg.get('custom_hooks') or [])
    hooks.append(ConfigDict(type='PredDrawHook',
                            out_dir=osp.abspath(show_dir)))
    cfg.custom_hooks = hooks
    return cfg


def enable_auto_scale_lr(cfg: Config, config_path: str) -> int:
    """Let the Runner scale the learning rate by (total batch size / base
    batch size), mmengine's ``auto_scale_lr``.

    Call it before ``--cfg-options`` are merged: without
    ``auto_scale_lr.base_batch_size`` in the config the base is the config
    file's ``train_dataloader.batch_size`` x 1 process, so a batch size
    given on the command line, or more processes, scale the lr.

    Args:
        cfg (Config): The config as loaded (changed in place).
        config_path (str): Its file, for messages.

    Returns:
        int: The base batch size.

    Raises:
        UserError: No base batch size can be found, or the config has no
            ``optim_wrapper`` to scale.
    """
    if not cfg.get('optim_wrapper'):
        raise UserError(f'{config_path} has no optim_wrapper; '
                        '--auto-scale-lr scales its learning rate.')
    auto = ConfigDict(cfg.get('auto_scale_lr') or {})
    if auto.get('base_batch_size') is None:
        batch_size = (cfg.get('train_dataloader') or {}).get('batch_size')
        if not isinstance(batch_size, int) or batch_size < 1:
            raise UserError(
                f'{config_path} declares no auto_scale_lr.base_batch_size '
                'and no train_dataloader.batch_size; add `auto_scale_lr = '
                'dict(base_batch_size=N)` (the total batch size its lr was '
                'tuned for) to use --auto-scale-lr.')
        auto.base_batch_size = batch_size
    auto.enable = True
    cfg.auto_scale_lr = auto
    return int(auto.base_batch_size)


def enable_compile(cfg: Config, backend: Optional[str] = None) -> Config:
    """Let the Runner ``torch.compile`` the model's ``train_step``.

    mmengine's Runner reads ``cfg.compile`` (True or a dict of
    ``torch.compile`` arguments) when training starts and compiles
    ``model.train_step``; the first iterations then take the compile time.

    Args:
        cfg (Config): The config (changed in place).
        backend (str, optional): ``torch.compile`` backend, e.g.
            ``'inductor'`` (torch's default), ``'aot_eager'`` or
            ``'eager'``; None keeps the config's or torch's default.

    Returns:
        Config: ``cfg``.
    """
    compile_cfg = cfg.get('compile')
    compile_cfg = (ConfigDict(compile_cfg) if isinstance(compile_cfg, dict)
                   else ConfigDict())
    if backend is not None:
        compile_cfg.backend = backend
    cfg.compile = compile_cfg if compile_cfg else True
    return cfg


#: ``tools/train.py --fsdp PRECISION`` -> ``FSDPWrapper(mixed_precision=)``.
FSDP_PRECISIONS = {'fp32': None, 'bf16': 'bf16', 'fp16': 'fp16'}


def enable_fsdp(cfg: Config, precision: str = 'fp32') -> Config:
    """Shard the model with :class:`~dinov3_mm.engine.fsdp.FSDPWrapper`.

    Keeps the other settings of a ``model_wrapper_cfg`` of that type (e.g.
    ``activation_checkpointing``); any other wrapper is replaced.

    Args:
        cfg (Config): The config (changed in place).
        precision (str): One of :data:`FSDP_PRECISIONS`.

    Returns:
        Config: ``cfg``.
    """
    wrapper = cfg.get('model_wrapper_cfg')
    if not wrapper or wrapper.get('type') != 'FSDPWrapper':
        wrapper = ConfigDict(type='FSDPWrapper')
    wrapper.mixed_precision = FSDP_PRECISIONS[precision]
    cfg.model_wrapper_cfg = wrapper
    return cfg
