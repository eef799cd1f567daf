"""Knowledge distillation of a frozen DINOv3 teacher into a smaller model."""
import logging
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModel
from torch import Tensor, nn

from dinov3_mm.models.distill.features import (describe_backbone,
                                               extract_features)
from dinov3_mm.models.distill.losses import (cosine_loss, relational_loss,
                                             resize_grid, smooth_l1_loss)
from dinov3_mm.registry import MODELS
from dinov3_mm.utils.cpu_bf16 import autocast_or_fp32

GLOBAL_LOSSES = ('cosine', 'smooth_l1')
DENSE_LOSSES = ('cosine', 'relational')
AUTOCAST_DTYPES = {'bfloat16': torch.bfloat16, 'float16': torch.float16}


def _size(value, name: str) -> Optional[Tuple[int, int]]:
    if value is None:
        return None
    size = (value, value) if isinstance(value, int) else tuple(value)
    if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
        raise ValueError(f'{name} must be an int or (height, width), got '
                         f'{value!r}.')
    return size


def _weights(given: Optional[dict], valid: Sequence[str],
             name: str) -> Dict[str, float]:
    weights = dict(given or {})
    unknown = sorted(set(weights) - set(valid))
    if unknown:
        raise ValueError(f'{name} has unknown terms {unknown}; valid terms '
                         f'are {list(valid)}.')
    if any(w < 0 for w in weights.values()):
        raise ValueError(f'{name} weights must be >= 0, got {weights}.')
    return {k: float(w) for k, w in weights.items() if w > 0}


@MODELS.register_module()
class DINOv3Distiller(BaseModel):
    """Distil a frozen teacher backbone into a trainable student, no labels.

    Both models see the same normalised images (each optionally resized to
    its own ``*_input_size``). With ``s`` the student's global feature (ViT
    class token, ConvNeXt normalised global average, or the pooled map of
    another backbone), ``t`` the teacher's, ``P_g`` a learned linear
    projection to the teacher's width ``D``, ``S`` the student's patch grid
    ``(C_s, h_s, w_s)``, ``T`` the teacher's ``(D, h, w)``, ``P_d`` a
    learned 1x1 projection and ``R`` the bilinear resize of a grid to
    ``(h, w)``, the terms are (each multiplied by its weight):

    * ``loss_global_cosine = mean_b (1 - cos(P_g s_b, t_b))``
    * ``loss_global_smooth_l1 = mean SmoothL1_beta(LN(P_g s), LN(t))``, with
      ``LN`` the layer normalisation over channels without affine
      (:func:`~dinov3_mm.models.distill.losses.smooth_l1_loss`)
    * ``loss_dense_cosine = mean_{b, i} (1 - cos(R(P_d S)_{b,i}, T_{b,i}))``
      over the ``h * w`` teacher patches ``i``
    * ``loss_dense_relational = mean_{b,i,j} (cos(R(S)_i, R(S)_j) -
      cos(T_i, T_j))**2``: the patch-to-patch similarity (Gram) matrices;
      no projection, only the relations between patches are matched
    * ``loss_dino`` (with ``dino_head``): the DINO objective through the
      teacher's own frozen head ``H`` (from an SSL checkpoint that has it):
      ``-mean_b sum_k p_{b,k} log softmax(H(P_g s_b) / tau_s)_k`` with
      ``p = SinkhornKnopp(H(t) / tau_t)``.

    The student's grid is resized to the teacher's because the two strides
    differ (16 for a ViT/16, 32 for a ConvNeXt) or the inputs do. Monitoring
    values (not losses): ``cos_global``, the mean cosine between ``P_g s``
    and ``t``, and ``cos_dense`` likewise per patch.

    The teacher is built from any registered backbone config, its weights
    loaded by its ``init_cfg`` (a released DINOv3 checkpoint, or a dinov3_mm
    checkpoint of a fine-tuned or SSL-continued model: the loader picks the
    right backbone inside it); its parameters have ``requires_grad=False``
    (so optimizer constructors that skip frozen parameters, such as
    ``LayerDecayOptimWrapperConstructor``, leave them out), it stays in eval
    mode and runs under ``torch.no_grad`` and, optionally, autocast.

    The student is ``self.backbone`` and the teacher ``self.teacher_backbone``:
    a checkpoint of this model therefore exports the student
    (``tools/convert_checkpoint.py``) and loads as a backbone ``init_cfg``
    like a classifier checkpoint (keys under ``backbone.``). The projections
    are training aids and are not exported.

    Teacher caching (``cache_teacher=True``): the teacher's outputs are kept
    in a dict in memory (on the CPU) keyed by the sample's ``sample_idx``
    (``PackClsInputs(meta_keys=(..., 'sample_idx'))``), and reused the next
    time that sample comes. Only valid when the pipeline is deterministic
    (no random crop or flip): the cache does not know the augmentation. It
    holds ``(1 + h * w) * D`` floats per sample.

    Call graph::

        loss: data_preprocessor -> (resize) -> teacher (no grad, autocast)
              or the cache -> t, T
              -> (resize) -> student -> s, S -> P_g, P_d -> the terms
        tensor: the student's global feature
        predict: not supported (ValueError)

    Args:
        teacher (dict): Backbone config with its weights in ``init_cfg``.
        student (dict): Backbone config of the model to train.
        global_loss (dict): Weights of the global terms, keys among
            :data:`GLOBAL_LOSSES`. Defaults to ``dict(cosine=1.0)``.
        dense_loss (dict): Weights of the dense terms, keys among
            :data:`DENSE_LOSSES`; empty for none. Defaults to
            ``dict(cosine=1.0)``.
        smooth_l1_beta (float): Defaults to 1.0.
        teacher_autocast (str, optional): ``'bfloat16'`` or ``'float16'``
            to run the teacher under autocast. Defaults to None (float32).
        teacher_input_size (int | tuple, optional): Resize the batch to this
            for the teacher. Defaults to None (as loaded).
        student_input_size (int | tuple, optional): Likewise for the
            student.
        cache_teacher (bool): See above. Defaults to False.
        dino_head (dict, optional): ``DINOHead`` arguments (``out_dim``,
            ``hidden_dim``, ``bottleneck_dim``, ``nlayers``) of the teacher's
            head; enables ``loss_dino``. Needs ``dino_head_checkpoint``.
        dino_head_checkpoint (str, optional): A DINOv3SSL checkpoint holding
            the head under ``dino_head_prefix``.
        dino_head_prefix (str): Defaults to ``'teacher.dino_head.'``.
        dino_loss_weight (float): Defaults to 1.0.
        student_temp (float): Defaults to 0.1.
        teacher_temp (float): Defaults to 0.07.
        probe_size (int): Side of the zero image a backbone without
            ``forward_features`` is run on at build time to learn its
            output. Defaults to 64.
        data_preprocessor (dict, optional): Defaults to
            ``dict(type='ClsDataPreprocessor', normalization='lvd1689m')``.
        init_cfg (dict, optional): mmengine init config.

    Raises:
        TypeError: At build time, a dense term is asked for but the teacher
            or the student gives no patch grid, or a backbone's output
            cannot be read; the message names both backbone types.
        ValueError: Unknown loss terms or no term at all, bad sizes, a DINO
            head without its checkpoint.
    """

    def __init__(self,
                 teacher: dict,
                 student: dict,
                 global_loss: Optional[dict] = None,
                 dense_loss: Optional[dict] = None,
                 smooth_l1_beta: float = 1.0,
                 teacher_autocast: Optional[str] = None,
                 teacher_input_size: Union[int, Sequence[int], None] = None,
                 student_input_size: Union[int, Sequence[int], None] = None,
                 cache_teacher: bool = False,
                 dino_head: Optional[dict] = None,
                 dino_head_checkpoint: Optional[str] = None,
                 dino_head_prefix: str = 'teacher.dino_head.',
                 dino_loss_weight: float = 1.0,
                 student_temp: float = 0.1,
                 teacher_temp: float = 0.07,
                 probe_size: int = 64,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='ClsDataPreprocessor',
                                     normalization='lvd1689m')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.global_weights = _weights(
            dict(cosine=1.0) if global_loss is None else global_loss,
            GLOBAL_LOSSES, 'global_loss')
        self.dense_weights = _weights(
            dict(cosine=1.0) if dense_loss is None else dense_loss,
            DENSE_LOSSES, 'dense_loss')
        if teacher_autocast is not None and (teacher_autocast
                                             not in AUTOCAST_DTYPES):
            raise ValueError(f'teacher_autocast={teacher_autocast!r}; '
                             f'expected None or one of '
                             f'{sorted(AUTOCAST_DTYPES)}.')
        self.teacher_autocast = teacher_autocast
        self.teacher_input_size = _size(teacher_input_size,
                                        'teacher_input_size')
        self.student_input_size = _size(student_input_size,
                                        'student_input_size')
        self.smooth_l1_beta = smooth_l1_beta
        self.cache_teacher = cache_teacher
        self._cache: Dict[int, Tuple[Tensor, Optional[Tensor]]] = {}

        self.backbone = MODELS.build(student)
        self.teacher_backbone = MODELS.build(teacher)
        names = (f'teacher {type(self.teacher_backbone).__name__}, student '
                 f'{type(self.backbone).__name__}')
        specs = []
        for role, model in (('teacher', self.teacher_backbone),
                            ('student', self.backbone)):
            try:
                specs.append(describe_backbone(model, probe_size))
            except TypeError as exc:
                raise TypeError(
                    f'DINOv3Distiller ({names}): cannot read the {role}\'s '
                    f'features: {exc}. A backbone must have '
                    'forward_features (x_norm_clstoken, x_norm_patchtokens) '
                    'or return (B, C) or (B, C, h, w) from forward.'
                ) from exc
        self.teacher_spec, self.student_spec = specs
        if self.dense_weights and not (self.teacher_spec.dense
                                       and self.student_spec.dense):
            lacking = [role for role, spec in zip(('teacher', 'student'),
                                                  specs) if not spec.dense]
            raise TypeError(
                f'DINOv3Distiller ({names}): dense_loss '
                f'{sorted(self.dense_weights)} needs patch features from '
                f'both, but the {" and the ".join(lacking)} gives only a '
                'global vector (no patch tokens or feature map). Set '
                'dense_loss=dict() or use a backbone with patch outputs '
                "(e.g. DINOv3ViT, DINOv3ConvNeXt, out_type='featmap').")

        width_t, width_s = self.teacher_spec.width, self.student_spec.width
        # only modules that a loss term uses, so that DDP sees every
        # trainable parameter used
        self.global_proj = (nn.Linear(width_s, width_t)
                            if self.global_weights or dino_head is not None
                            else None)
        self.dense_proj = (nn.Conv2d(width_s, width_t, 1)
                           if 'cosine' in self.dense_weights else None)

        self.teacher_dino_head = None
        if dino_head is not None:
            if dino_head_checkpoint is None:
                raise ValueError(
                    'DINOv3Distiller: dino_head needs dino_head_checkpoint, '
                    'the SSL checkpoint that holds the trained head (a random '
                    'head gives no useful targets).')
            self.teacher_dino_head = MODELS.build(
                dict(type='DINOHead', in_dim=width_t, **dino_head))
            self.teacher_dino_head.requires_grad_(False)
            self.dino_loss = MODELS.build(dict(
                type='DINOClsTokenLoss',
                out_dim=self.teacher_dino_head.out_dim,
                student_temp=student_temp))
        self.dino_head_checkpoint = dino_head_checkpoint
        self.dino_head_prefix = dino_head_prefix
        self.dino_loss_weight = dino_loss_weight
        self.teacher_temp = teacher_temp
        if not (self.global_weights or self.dense_weights
                or self.teacher_dino_head is not None):
            raise ValueError('DINOv3Distiller: every loss weight is 0; give '
                             'global_loss, dense_loss or dino_head.')
        self.teacher_backbone.requires_grad_(False)

    # ------------------------------------------------------------------
    # weights and modes
    def init_weights(self) -> None:
        """Load the teacher (its ``init_cfg``) and the teacher's DINO head."""
        init = self.teacher_backbone.init_cfg
        if not (isinstance(init, dict) and init.get('checkpoint')):
            print_log(
                'DINOv3Distiller: the teacher has no checkpoint in its '
                'init_cfg, so it keeps random weights; set '
                'model.teacher.init_cfg.checkpoint=PATH.',
                logger='current', level=logging.WARNING)
        super().init_weights()
        if self.teacher_dino_head is not None:
            self._load_dino_head()
        self.teacher_backbone.requires_grad_(False)

    def _load_dino_head(self) -> None:
        from dinov3_mm.models.backbones.weights import read_checkpoint
        from dinov3_mm.utils.checkpoint_io import CheckpointError
        ckpt = read_checkpoint(self.dino_head_checkpoint)
        prefix = self.dino_head_prefix
        state = {k[len(prefix):]: v for k, v in ckpt.state_dict.items()
                 if k.startswith(prefix)}
        if not state:
            raise CheckpointError(
                f'{self.dino_head_checkpoint} has no keys under '
                f'{prefix!r}: it holds no DINO head (public DINOv3 '
                'checkpoints have none; use a checkpoint of '
                'configs/ssl/*.py or drop dino_head).')
        try:
            self.teacher_dino_head.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(
                f'The DINO head in {self.dino_head_checkpoint} does not match '
                f'dino_head: {exc}') from exc

    def train(self, mode: bool = True) -> 'DINOv3Distiller':
        """The teacher (and its head) always stay in eval mode."""
        super().train(mode)
        self.teacher_backbone.eval()
        if self.teacher_dino_head is not None:
            self.teacher_dino_head.eval()
        return self

    # ------------------------------------------------------------------
    # forward
    def forward(self, inputs: Tensor, data_samples: Optional[List] = None,
                mode: str = 'tensor'):
        """``loss``: the distillation terms; ``tensor``: the student's
        global features of an image batch."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            images = self._resized(inputs, self.student_input_size)
            return extract_features(self.backbone, self.student_spec,
                                    images)[0]
        raise ValueError(f'DINOv3Distiller supports mode loss or tensor, got '
                         f'{mode!r} (there is nothing to predict).')

    @staticmethod
    def _resized(images: Tensor, size: Optional[Tuple[int, int]]) -> Tensor:
        if size is None or tuple(images.shape[-2:]) == size:
            return images
        return F.interpolate(images, size=size, mode='bilinear',
                             align_corners=False, antialias=True)

    @torch.no_grad()
    def _run_teacher(self, images: Tensor
                     ) -> Tuple[Tensor, Optional[Tensor]]:
        images = self._resized(images, self.teacher_input_size)
        with autocast_or_fp32(images.device.type, self.teacher_autocast,
                              'teacher_autocast'):
            glob, grid = extract_features(self.teacher_backbone,
                                          self.teacher_spec, images)
        return glob.float(), None if grid is None else grid.float()

    def teacher_outputs(self, images: Tensor,
                        data_samples: Optional[List] = None
                        ) -> Tuple[Tensor, Optional[Tensor]]:
        """The teacher's global features and patch grid, from the cache when
        ``cache_teacher`` holds every sample of the batch."""
        if not self.cache_teacher:
            return self._run_teacher(images)
        keys = self._cache_keys(data_samples, len(images))
        if all(k in self._cache for k in keys):
            entries = [self._cache[k] for k in keys]
            glob = torch.stack([e[0] for e in entries]).to(images.device)
            grid = (None if entries[0][1] is None else torch.stack(
                [e[1] for e in entries]).to(images.device))
            return glob, grid
        glob, grid = self._run_teacher(images)
        for i, key in enumerate(keys):
            self._cache[key] = (glob[i].cpu(),
                                None if grid is None else grid[i].cpu())
        return glob, grid

    @staticmethod
    def _cache_keys(data_samples: Optional[List], count: int) -> List[int]:
        keys = [None if s is None else s.metainfo.get('sample_idx')
                for s in (data_samples or [None] * count)]
        if len(keys) != count or any(k is None for k in keys):
            raise ValueError(
                'DINOv3Distiller(cache_teacher=True) needs the sample index '
                "of every image: add 'sample_idx' to the meta_keys of "
                'PackClsInputs in the train pipeline.')
        return [int(k) for k in keys]

    def loss(self, inputs: Tensor, data_samples: Optional[List] = None
             ) -> Dict[str, Tensor]:
        """Weighted terms ``loss_*`` (their sum is the training loss) and the
        monitoring values ``cos_global`` / ``cos_dense``.

        Args:
            inputs (Tensor): Normalised ``(B, 3, H, W)`` images.
            data_samples (list, optional): Needed with ``cache_teacher``.
        """
        t_glob, t_grid = self.teacher_outputs(inputs, data_samples)
        s_glob, s_grid = extract_features(
            self.backbone, self.student_spec,
            self._resized(inputs, self.student_input_size))
        losses: Dict[str, Tensor] = {}
        proj = None if self.global_proj is None else self.global_proj(s_glob)
        for name, weight in self.global_weights.items():
            if name == 'cosine':
                term = cosine_loss(proj, t_glob)
            else:
                term = smooth_l1_loss(proj, t_glob, self.smooth_l1_beta)
            losses[f'loss_global_{name}'] = weight * term
        if self.dense_weights:
            size = t_grid.shape[-2:]
            if 'cosine' in self.dense_weights:
                dense = resize_grid(self.dense_proj(s_grid), size)
                term = cosine_loss(dense, t_grid, dim=1)
                losses['loss_dense_cosine'] = (
                    self.dense_weights['cosine'] * term)
                losses['cos_dense'] = 1 - term.detach()
            if 'relational' in self.dense_weights:
                term = relational_loss(resize_grid(s_grid, size), t_grid)
                losses['loss_dense_relational'] = (
                    self.dense_weights['relational'] * term)
        if self.teacher_dino_head is not None:
            losses['loss_dino'] = self.dino_loss_weight * self._dino(
                proj, t_glob)
        if proj is not None:
            with torch.no_grad():
                losses['cos_global'] = F.cosine_similarity(
                    proj.float(), t_glob, dim=-1).mean()
        return losses

    def _dino(self, student_proj: Tensor, teacher_glob: Tensor) -> Tensor:
        with torch.no_grad():
            probs = self.dino_loss.sinkhorn_knopp_teacher(
                self.teacher_dino_head(teacher_glob),
                teacher_temp=self.teacher_temp)
        logits = self.teacher_dino_head(student_proj)
        return self.dino_loss(logits.unsqueeze(0), probs.unsqueeze(0))
