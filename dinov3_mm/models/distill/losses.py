"""Feature-matching losses of knowledge distillation (functional).

Notation: ``s`` a student feature already projected to the teacher's width,
``t`` the teacher's, ``D`` their width, ``B`` the batch, ``N = h * w`` the
teacher's patch grid.
"""
from typing import Tuple

import torch.nn.functional as F
from torch import Tensor


def cosine_loss(student: Tensor, teacher: Tensor, dim: int = -1) -> Tensor:
    """``mean(1 - cos(s, t))`` over every vector along ``dim``.

    0 when the directions agree, 1 for orthogonal, 2 for opposite vectors.
    """
    cos = F.cosine_similarity(student.float(), teacher.float(), dim=dim,
                              eps=1e-6)
    return (1 - cos).mean()


def smooth_l1_loss(student: Tensor, teacher: Tensor,
                   beta: float = 1.0) -> Tensor:
    """Smooth-L1 between layer-normalised vectors (last dim).

    ``z_hat = (z - mean(z)) / std(z)`` over the ``D`` channels (no affine),
    then ``mean_i l(s_hat_i - t_hat_i)`` with ``l(x) = x**2 / (2 beta)`` for
    ``|x| < beta`` and ``|x| - beta / 2`` otherwise. The normalisation takes
    away the teacher's feature scale, so the weights of different teachers
    mean the same.
    """
    width = student.shape[-1]
    return F.smooth_l1_loss(F.layer_norm(student.float(), (width, )),
                            F.layer_norm(teacher.float(), (width, )),
                            beta=beta)


def resize_grid(grid: Tensor, size: Tuple[int, int]) -> Tensor:
    """Bilinear resize of a ``(B, C, h, w)`` grid to ``size`` (no-op if equal).

    ``align_corners=False``: cell centres map onto cell centres, the same
    convention as the patch grids themselves.
    """
    if tuple(grid.shape[-2:]) == tuple(size):
        return grid
    return F.interpolate(grid, size=tuple(size), mode='bilinear',
                         align_corners=False)


def relational_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """MSE between the patch-to-patch cosine similarity matrices.

    For each image, ``G = Z_hat^T Z_hat`` with ``Z_hat`` the ``(C, N)`` grid
    whose columns are L2-normalised, so ``G[i, j] = cos(z_i, z_j)``; the loss
    is ``mean_{b, i, j} (G_s[b, i, j] - G_t[b, i, j])**2``. Only the relations
    between patches are matched, so the two grids may have different widths
    (no projection needed) but must have the same ``h * w``.

    Args:
        student (Tensor): ``(B, C_s, h, w)``.
        teacher (Tensor): ``(B, C_t, h, w)``.
    """
    s = F.normalize(student.float().flatten(2), dim=1, eps=1e-6)
    t = F.normalize(teacher.float().flatten(2), dim=1, eps=1e-6)
    return F.mse_loss(s.transpose(1, 2) @ s, t.transpose(1, 2) @ t)


__all__ = ['cosine_loss', 'relational_loss', 'resize_grid', 'smooth_l1_loss']
