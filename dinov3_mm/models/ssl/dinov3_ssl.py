"""DINOv3 self-supervised training (DINO + iBOT + KoLeo + Gram anchoring).

A student (backbone, DINO head, iBOT head) learns to match an EMA teacher of
itself: the teacher sees the two global crops, the student sees the global
crops (with iBOT block masks on part of them) and the local crops.

* DINO loss: student class-token prototypes vs the teacher's, centred by
  Sinkhorn-Knopp (or the DINO softmax centring); global and local terms are
  weighted by their number of (student, teacher) crop pairs, as official.
* iBOT loss: student patch prototypes of masked patches vs the teacher's
  for the same (unmasked) patches.
* KoLeo: spreads the student's pre-head global class tokens.
* Gram anchoring (optional): keeps the student's patch-feature Gram matrices
  close to those of a frozen copy of the starting model.

The teacher's momentum and temperature are set by
:class:`~dinov3_mm.engine.hooks.DINOTeacherHook`; without the hook the
teacher stays at its initial weights and the temperature at
``teacher_temp``.
"""
import copy
import logging
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModel, ModuleDict
from torch import Tensor, nn

from dinov3_mm.models.lora import apply_lora
from dinov3_mm.models.ssl.masking import sample_masks
from dinov3_mm.registry import MODELS

CENTERINGS = ('sinkhorn_knopp', 'softmax')


@MODELS.register_module()
class DINOv3SSL(BaseModel):
    """Student/teacher model for continuing DINOv3 pretraining.

    Call graph::

        init_weights: student (backbone init_cfg: released weights, or
                      random with checkpoint=None) -> copied into teacher
                      (and Gram teacher)
        loss:    data_preprocessor -> crop-major global_crops (2B) and
                 local_crops (NB)
                 -> _masks (iBOT block masks on part of the global crops)
                 -> _teacher_targets, no grad: teacher.backbone(global)
                    -> dino_head(cls) / ibot_head(masked patches)
                    -> Sinkhorn-Knopp or softmax centring
                 -> student.backbone([global + masks, local])
                 -> dino_head(cls) -> dino_loss (global and local pairs)
                 -> koleo_loss(global cls)
                 -> ibot_head(masked patches) -> ibot_loss
                 (-> gram_teacher(global) -> gram_loss(student patches))
                 -> _monitoring (teacher_entropy, student_std)
        tensor:  teacher.backbone.forward_features -> x_norm_clstoken
        predict: not supported (ValueError)
        around each iteration (DINOTeacherHook): teacher_temp before,
                 update_teacher(momentum) (EMA) and refresh_gram_teacher
                 after

    Args:
        backbone (dict): A :class:`~dinov3_mm.models.backbones.DINOv3ViT`
            config; its ``init_cfg`` (released weights) initialises student,
            teacher and Gram teacher alike. The recipes leave the slot empty
            (``init_cfg=dict(type='Pretrained', checkpoint=None)``): then all
            three start from the same random weights, which is logged.
        dino_head (dict): :class:`~dinov3_mm.models.heads.DINOHead` arguments
            except ``in_dim`` (official: 65536 prototypes, hidden 2048,
            bottleneck 256, 3 layers; small datasets do well with a few
            thousand prototypes).
        ibot_head (dict, optional): Arguments of the separate iBOT head.
            Defaults to those of ``dino_head``.
        dino_loss_weight (float): Defaults to 1.0.
        ibot_loss_weight (float): Defaults to 1.0.
        koleo_loss_weight (float): Defaults to 0.1.
        gram_loss_weight (float): Gram anchoring weight; 0 turns it off (no
            Gram teacher is kept). Defaults to 0.
        centering (str): ``'sinkhorn_knopp'`` (DINOv3) or ``'softmax'``
            (DINO's running-mean centre).
        student_temp (float): Defaults to 0.1.
        teacher_temp (float): Teacher temperature until a hook sets another.
            Defaults to 0.07.
        center_momentum (float): Softmax centring EMA. Defaults to 0.9.
        mask_probability (float): Share of global crops that get iBOT masks.
            Defaults to 0.5.
        mask_ratio_min_max (tuple): Masked patch ratio range. Defaults to
            ``(0.1, 0.5)``.
        global_ignore_diagonal (bool): Leave out the (crop A, crop A) pairs
            of the global DINO term. Defaults to True.
        gram_img_level (bool): Gram matrices per image (True) or over the
            whole batch of patches. Defaults to True.
        lora (dict, optional): ``apply_lora`` arguments (``r``, ``alpha``,
            ...): only LoRA adapters of the backbone (and the heads) train.
        data_preprocessor (dict, optional): Defaults to
            ``dict(type='SSLDataPreprocessor')``.
        init_cfg (dict, optional): mmengine init config of the whole model.
    """

    def __init__(self,
                 backbone: dict,
                 dino_head: Optional[dict] = None,
                 ibot_head: Optional[dict] = None,
                 dino_loss_weight: float = 1.0,
                 ibot_loss_weight: float = 1.0,
                 koleo_loss_weight: float = 0.1,
                 gram_loss_weight: float = 0.0,
                 centering: str = 'sinkhorn_knopp',
                 student_temp: float = 0.1,
                 teacher_temp: float = 0.07,
                 center_momentum: float = 0.9,
                 mask_probability: float = 0.5,
                 mask_ratio_min_max: Tuple[float, float] = (0.1, 0.5),
                 global_ignore_diagonal: bool = True,
                 gram_img_level: bool = True,
                 lora: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='SSLDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            # built here through the dinov3_mm registry, so no default
            # scope is needed
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if centering not in CENTERINGS:
            raise ValueError(f'centering={centering!r}; expected one of '
                             f'{CENTERINGS}.')
        if not 0 <= mask_probability <= 1:
            raise ValueError(f'mask_probability must be in [0, 1], got '
                             f'{mask_probability}.')
        student_backbone = MODELS.build(backbone)
        if not hasattr(student_backbone, 'mask_token') or not hasattr(
                student_backbone, 'forward_features'):
            raise TypeError(
                f'DINOv3SSL needs a ViT backbone with a mask token and '
                f'forward_features (DINOv3ViT); got '
                f'{type(student_backbone).__name__}.')
        embed_dims = student_backbone.embed_dims
        dino_head = dict(type='DINOHead', **(dino_head or {}))
        ibot_head = dict(dino_head, **(ibot_head or {}))
        ibot_head['type'] = 'DINOHead'
        for name, cfg in (('dino_head', dino_head), ('ibot_head', ibot_head)):
            if cfg.setdefault('in_dim', embed_dims) != embed_dims:
                raise ValueError(
                    f'{name}.in_dim={cfg["in_dim"]} but the backbone gives '
                    f'{embed_dims}-d tokens; drop in_dim or set it to '
                    f'{embed_dims}.')
        # mmengine's ModuleDict, so that init_weights reaches the backbone
        self.student = ModuleDict(
            dict(backbone=student_backbone, dino_head=MODELS.build(dino_head),
                 ibot_head=MODELS.build(ibot_head)))
        if lora is not None:
            # released weights load into the plain layers, before wrapping
            init = student_backbone.init_cfg
            if isinstance(init, dict) and init.get('type') == 'Pretrained':
                student_backbone.init_weights()
            apply_lora(student_backbone, **lora)
        # the teachers get the student's weights in init_weights; they do
        # not read the checkpoint themselves
        self.teacher = copy.deepcopy(self.student)
        self.teacher.backbone.init_cfg = None
        self.teacher.requires_grad_(False)
        self.gram_teacher = None
        if gram_loss_weight > 0:
            self.gram_teacher = copy.deepcopy(student_backbone)
            self.gram_teacher.init_cfg = None
            self.gram_teacher.requires_grad_(False)

        self.dino_loss = MODELS.build(dict(
            type='DINOClsTokenLoss', out_dim=dino_head['out_dim'],
            student_temp=student_temp, center_momentum=center_momentum))
        self.ibot_loss = MODELS.build(dict(
            type='IBOTPatchLoss', patch_out_dim=ibot_head['out_dim'],
            student_temp=student_temp, center_momentum=center_momentum))
        self.koleo_loss = MODELS.build(dict(type='KoLeoLoss'))
        self.gram_loss = (MODELS.build(dict(type='GramLoss'))
                          if gram_loss_weight > 0 else None)
        self.dino_loss_weight = dino_loss_weight
        self.ibot_loss_weight = ibot_loss_weight
        self.koleo_loss_weight = koleo_loss_weight
        self.gram_loss_weight = gram_loss_weight
        self.gram_img_level = gram_img_level
        self.centering = centering
        self.teacher_temp = teacher_temp
        self.mask_probability = mask_probability
        self.mask_ratio_min_max = tuple(mask_ratio_min_max)
        self.global_ignore_diagonal = global_ignore_diagonal
        self.patch_size = student_backbone.patch_size
        self._ema_pairs = None

    # ------------------------------------------------------------------
    # weights
    def init_weights(self) -> None:
        """Initialise the student (loading released weights through the
        backbone's ``init_cfg``), then copy it into the teacher and the
        Gram teacher."""
        init = self.student.backbone.init_cfg
        if (isinstance(init, dict) and init.get('type') == 'Pretrained'
                and init.get('checkpoint') is None):
            print_log(
                'DINOv3SSL: model.backbone.init_cfg.checkpoint is None, so '
                'student, teacher and Gram teacher start from random weights '
                '(pretraining from scratch). To continue a released model, '
                'pass --cfg-options model.backbone.init_cfg.checkpoint=PATH.',
                logger='current', level=logging.WARNING)
        super().init_weights()
        self.teacher.load_state_dict(self.student.state_dict())
        if self.gram_teacher is not None:
            self.gram_teacher.load_state_dict(
                self.student.backbone.state_dict())

    def train(self, mode: bool = True) -> 'DINOv3SSL':
        """Teachers always stay in eval mode (no drop path)."""
        super().train(mode)
        self.teacher.eval()
        if self.gram_teacher is not None:
            self.gram_teacher.eval()
        return self

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """``teacher = momentum * teacher + (1 - momentum) * student``."""
        if self._ema_pairs is None:
            student = dict(self.student.named_parameters())
            self._ema_pairs = [
                (param, student[name])
                for name, param in self.teacher.named_parameters()
            ]
        teacher_params = [t for t, _ in self._ema_pairs]
        student_params = [s.detach() for _, s in self._ema_pairs]
        torch._foreach_mul_(teacher_params, momentum)
        torch._foreach_add_(teacher_params, student_params,
                            alpha=1 - momentum)

    @torch.no_grad()
    def refresh_gram_teacher(self) -> None:
        """Copy the EMA teacher's backbone into the Gram teacher."""
        if self.gram_teacher is not None:
            self.gram_teacher.load_state_dict(
                self.teacher.backbone.state_dict())

    # ------------------------------------------------------------------
    # forward
    def forward(self,
                inputs,
                data_samples: Optional[List] = None,
                mode: str = 'tensor'):
        """``loss``: the SSL losses of a multi-crop batch; ``tensor``: the
        teacher backbone's normalised class tokens of an image batch."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            if isinstance(inputs, dict):
                inputs = inputs['global_crops']
            with torch.no_grad():
                return self.teacher.backbone.forward_features(
                    inputs)['x_norm_clstoken']
        raise ValueError(f'DINOv3SSL supports mode loss or tensor, got '
                         f'{mode!r} (there is nothing to predict).')

    def _masks(self, n_images: int, grid: Tuple[int, int],
               device: torch.device) -> Tensor:
        return sample_masks(n_images, grid,
                            mask_ratio_min_max=self.mask_ratio_min_max,
                            mask_probability=self.mask_probability).to(device)

    @torch.no_grad()
    def _teacher_targets(self, global_crops: Tensor, n_global: int,
                         batch: int, masks: Tensor,
                         n_masked: Tensor) -> Dict[str, Tensor]:
        """Centred teacher probabilities of class tokens and masked patches.

        One teacher pass over the global crops, without autograd; the iBOT
        head sees the masked patches only (in ``masks.nonzero()`` order).
        """
        out = self.teacher.backbone.forward_features(global_crops)
        cls_logits = self.teacher.dino_head(out['x_norm_clstoken'])
        # the masked patches straight from the (B, N, D) token grid: no
        # flattened copy of every patch token first
        patches = out['x_norm_patchtokens'][masks]
        patch_logits = self.teacher.ibot_head(patches)
        temp = self.teacher_temp
        if self.centering == 'sinkhorn_knopp':
            # called on every rank, also with no masked patch here: the
            # Sinkhorn sums are all-reduced across ranks
            cls_probs = self.dino_loss.sinkhorn_knopp_teacher(
                cls_logits, teacher_temp=temp)
            patch_probs = self.ibot_loss.sinkhorn_knopp_teacher(
                patch_logits, teacher_temp=temp,
                n_masked_patches_tensor=n_masked)
        else:
            cls_probs = self.dino_loss.softmax_center_teacher(
                cls_logits, teacher_temp=temp)
            patch_probs = self.ibot_loss.softmax_center_teacher(
                patch_logits, teacher_temp=temp)
            self.dino_loss.update_center(cls_logits)
            self.ibot_loss.update_center(patch_logits)
        return dict(cls_probs=cls_probs.unflatten(0, (n_global, batch)),
                    patch_probs=patch_probs)

    def loss(self, inputs: dict, data_samples: Optional[List] = None
             ) -> Dict[str, Tensor]:
        """Weighted loss terms (``loss_*``) and monitoring values.

        Args:
            inputs (dict): From :class:`SSLDataPreprocessor`: crop-major
                ``global_crops`` (2B, 3, G, G) and ``local_crops``
                (NB, 3, L, L).

        Returns:
            dict: ``loss_dino_global``, ``loss_dino_local``, ``loss_ibot``,
            ``loss_koleo`` (and ``loss_gram``), already weighted (their sum
            is the training loss), plus the unweighted terms and the
            monitoring values ``teacher_entropy`` (mean entropy of the
            teacher's class-token distribution; near 0 means collapse to
            one prototype), ``student_std`` (std over the batch of the
            L2-normalised student class tokens, averaged over channels;
            ``1 / sqrt(dim)`` for spread features, near 0 when collapsed);
            :class:`DINOTeacherHook` logs ``teacher_temp`` itself.
        """
        global_crops = inputs['global_crops']
        local_crops = inputs.get('local_crops')
        n_global = int(inputs.get('n_global', 2))
        batch = global_crops.shape[0] // n_global
        if batch < 2:
            raise ValueError(
                f'DINOv3SSL got a batch of {batch} image(s) but needs at '
                'least 2 (KoLeo and the Sinkhorn-Knopp centring work across '
                'the batch); set train_dataloader.drop_last=True so that a '
                'short last batch is dropped.')
        grid = (global_crops.shape[-2] // self.patch_size,
                global_crops.shape[-1] // self.patch_size)
        masks = self._masks(n_global * batch, grid, global_crops.device)
        n_masked = masks.sum().reshape(1)
        n_masked_int = int(n_masked)

        teacher = self._teacher_targets(global_crops, n_global, batch, masks,
                                        n_masked)

        has_local = local_crops is not None and local_crops.shape[0] > 0
        crops = [global_crops] + ([local_crops] if has_local else [])
        crop_masks = [masks] + ([None] if has_local else [])
        outs = self.student.backbone.forward_features(crops, masks=crop_masks)
        g_out = outs[0]
        g_cls = g_out['x_norm_clstoken']
        cls_tokens = [g_cls] + ([outs[1]['x_norm_clstoken']]
                                if has_local else [])
        head_out = self.student.dino_head(torch.cat(cls_tokens))
        g_logits = head_out[:g_cls.shape[0]].unflatten(0, (n_global, batch))

        losses = {}
        n_local = (local_crops.shape[0] // batch) if has_local else 0
        global_terms = (n_global * (n_global - 1)
                        if self.global_ignore_diagonal else n_global**2)
        local_terms = n_global * n_local
        total_terms = global_terms + local_terms
        dino_global = self.dino_loss(
            g_logits, teacher['cls_probs'],
            ignore_diagonal=self.global_ignore_diagonal)
        losses['dino_global'] = dino_global.detach()
        losses['loss_dino_global'] = (self.dino_loss_weight * global_terms /
                                      total_terms * dino_global)
        if has_local:
            l_logits = head_out[g_cls.shape[0]:].unflatten(0, (n_local, batch))
            dino_local = self.dino_loss(l_logits, teacher['cls_probs'])
            losses['dino_local'] = dino_local.detach()
            losses['loss_dino_local'] = (self.dino_loss_weight * local_terms /
                                         total_terms * dino_local)

        koleo = sum(self.koleo_loss(x) for x in g_cls.unflatten(
            0, (n_global, batch))) / n_global
        losses['koleo'] = koleo.detach()
        losses['loss_koleo'] = self.koleo_loss_weight * n_global * koleo

        # the iBOT head runs even on no patch, so that distributed training
        # sees its parameters used on every rank
        student_patches = g_out['x_norm_patchtokens'][masks]
        patch_logits = self.student.ibot_head(student_patches)
        if n_masked_int:
            weights = (1.0 / masks.sum(-1).clamp(min=1.0)).unsqueeze(
                -1).expand_as(masks)[masks]
            ibot = self.ibot_loss.forward_masked(
                patch_logits, teacher['patch_probs'], student_masks_flat=masks,
                n_masked_patches=n_masked_int, masks_weight=weights)
        else:
            ibot = patch_logits.sum() * 0  # no masked crop in this batch
        losses['ibot'] = ibot.detach()
        losses['loss_ibot'] = self.ibot_loss_weight * ibot

        if self.gram_teacher is not None:
            with torch.no_grad():
                target = self.gram_teacher.forward_features(
                    global_crops)['x_norm_patchtokens']
            gram = self.gram_loss(g_out['x_norm_patchtokens'], target,
                                  img_level=self.gram_img_level)
            losses['gram'] = gram.detach()
            losses['loss_gram'] = self.gram_loss_weight * gram

        losses.update(self._monitoring(teacher['cls_probs'], g_cls))
        return losses

    @torch.no_grad()
    def _monitoring(self, teacher_probs: Tensor,
                    student_cls: Tensor) -> Dict[str, Tensor]:
        probs = teacher_probs.detach().float().flatten(0, 1)
        probs = probs / probs.sum(-1, keepdim=True).clamp_min(1e-12)
        entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1).mean()
        feats = nn.functional.normalize(student_cls.detach().float(), dim=-1)
        return dict(teacher_entropy=entropy,
                    student_std=feats.std(0).mean())
