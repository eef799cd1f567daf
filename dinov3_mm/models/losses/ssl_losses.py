"""Self-supervised losses of DINOv3 pretraining: DINO, iBOT, KoLeo and Gram.

The maths follows the official implementation (``dinov3/loss/``):

* :class:`DINOClsTokenLoss`: cross-entropy between the teacher's centred
  distributions and the student's softmax over CLS-token prototypes, over all
  (student crop, teacher crop) pairs of an image.
* :class:`IBOTPatchLoss`: the same on the patches masked for the student,
  weighted per image.
* :class:`KoLeoLoss`: Kozachenko-Leonenko entropy regulariser that spreads
  the CLS features of a batch.
* :class:`GramLoss`: Gram anchoring, MSE between the patch-similarity (Gram)
  matrices of the student and of a Gram teacher.

Both distillation losses centre the teacher with Sinkhorn-Knopp (the DINOv3
default) or with a softmax around an EMA ``center`` (DINO/DINOv2 style).
Their reductions all-reduce over the default process group when
``torch.distributed`` is initialised; call them on every rank.
"""
import math
from typing import Optional, Union

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from dinov3_mm.registry import MODELS


def _dist_on() -> bool:
    return dist.is_available() and dist.is_initialized()


def _world_size() -> int:
    return dist.get_world_size() if _dist_on() else 1


@torch.no_grad()
def _sinkhorn_knopp(teacher_logits: Tensor, teacher_temp: float,
                    num_samples: Union[int, Tensor],
                    n_iterations: int) -> Tensor:
    """Sinkhorn-Knopp balanced assignment of samples to prototypes.

    Same iterations as the official code: ``Q = exp(logits / T)`` seen as a
    ``(K, B)`` matrix, normalised to sum 1, then ``n_iterations`` times rows
    to ``1/K`` (sums all-reduced) and columns to ``1/B``; finally scaled by
    ``B`` so that every sample's row of the result sums to 1. The global
    maximum logit is subtracted before ``exp`` (a common factor, removed
    exactly by the first normalisation) so large logits cannot overflow;
    a sample whose every score underflows gets an all-zero row instead of
    NaN.

    Args:
        teacher_logits (Tensor): ``(B_local, K)``.
        teacher_temp (float): Temperature ``T``.
        num_samples (int | Tensor): ``B``, the number of samples over all
            ranks.
        n_iterations (int): Sinkhorn iterations.

    Returns:
        Tensor: ``(B_local, K)`` float32, rows summing to 1.
    """
    logits = teacher_logits.float()
    num_prototypes = logits.shape[-1]
    if logits.numel() > 0:
        shift = logits.max()
    else:
        shift = logits.new_full((), -math.inf)
    if _dist_on():
        dist.all_reduce(shift, op=dist.ReduceOp.MAX)
    if not torch.isfinite(shift):
        shift = torch.zeros_like(shift)
    q = torch.exp((logits - shift) / teacher_temp).t()  # (K, B_local)

    # Sums that underflowed to exactly 0 (logits ~90 * T below the maximum)
    # would give 0 / 0; a floor of the smallest normal float keeps those
    # entries at 0 instead of NaN and changes nothing otherwise.
    tiny = torch.finfo(q.dtype).tiny
    sum_q = q.sum()
    if _dist_on():
        dist.all_reduce(sum_q)
    q /= sum_q.clamp(min=tiny)
    for _ in range(n_iterations):
        # Each prototype (row) gets total mass 1/K over all ranks.
        sum_of_rows = q.sum(dim=1, keepdim=True)
        if _dist_on():
            dist.all_reduce(sum_of_rows)
        q /= sum_of_rows.clamp(min=tiny)
        q /= num_prototypes
        # Each sample (column) gets mass 1/B.
        q /= q.sum(dim=0, keepdim=True).clamp(min=tiny)
        q /= num_samples
    q *= num_samples
    return q.t()


class _TeacherCentering(nn.Module):
    """Teacher centring shared by the DINO and iBOT losses.

    Holds the ``center`` buffer ``(1, K)`` (zeros at construction) for the
    softmax centring, and the pending EMA update. Like the official code the
    update is deferred: :meth:`update_center` starts the (asynchronous)
    all-reduce of the batch statistics and :meth:`apply_center_update` (also
    run by ``softmax_center_teacher(update_centers=True)``) folds them in::

        center = center * center_momentum + batch_mean * (1 - center_momentum)

    Softmax centring step (call on every rank, every iteration)::

        probs = loss.softmax_center_teacher(teacher_logits, teacher_temp)
        loss.update_center(teacher_logits)  # used from the next step on

    Args:
        out_dim (int): Number of prototypes ``K``.
        student_temp (float): Student softmax temperature.
        center_momentum (float): EMA momentum of ``center``.
    """

    def __init__(self,
                 out_dim: int,
                 student_temp: float,
                 center_momentum: float,
                 dim_name: str = 'out_dim'):
        super().__init__()
        if isinstance(out_dim, bool) or not isinstance(out_dim,
                                                       int) or out_dim < 1:
            raise ValueError(
                f'{dim_name} must be a positive int, got {out_dim!r}.')
        if not student_temp > 0:
            raise ValueError(f'student_temp must be > 0, got {student_temp}.')
        if not 0.0 <= center_momentum <= 1.0:
            raise ValueError('center_momentum must be in [0, 1], got '
                             f'{center_momentum}.')
        self.out_dim = out_dim
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.register_buffer('center', torch.zeros(1, out_dim))
        self._pending_stats: Optional[Tensor] = None
        self._pending_handle = None

    def _check_last_dim(self, name: str, tensor: Tensor) -> None:
        if tensor.ndim < 1 or tensor.shape[-1] != self.out_dim:
            raise ValueError(f'{name} must end with {self.out_dim} '
                             'prototypes (the loss out_dim), got shape '
                             f'{tuple(tensor.shape)}.')

    @torch.no_grad()
    def softmax_center_teacher(self,
                               teacher_logits: Tensor,
                               teacher_temp: float,
                               update_centers: bool = True) -> Tensor:
        """Teacher probabilities ``softmax((logits - center) / T)``.

        Args:
            teacher_logits (Tensor): ``(..., K)`` teacher head outputs.
            teacher_temp (float): Teacher temperature ``T``.
            update_centers (bool): First apply the update queued by
                :meth:`update_center`. Defaults to True.

        Returns:
            Tensor: ``(..., K)`` float32 probabilities.
        """
        self._check_last_dim('teacher_logits', teacher_logits)
        if update_centers:
            self.apply_center_update()
        return F.softmax(
            (teacher_logits.float() - self.center) / teacher_temp, dim=-1)

    @torch.no_grad()
    def update_center(self, teacher_logits: Tensor) -> None:
        """Queue the EMA update of ``center`` with this batch's mean logits.

        The mean is over every leading dimension of ``teacher_logits`` and
        over all ranks (sum and count all-reduced, so ranks may hold
        different numbers of rows). It is applied by the next
        :meth:`apply_center_update` or
        ``softmax_center_teacher(update_centers=True)``; an update still
        pending is applied first.

        Args:
            teacher_logits (Tensor): ``(..., K)`` raw teacher head outputs.
        """
        self._check_last_dim('teacher_logits', teacher_logits)
        self.apply_center_update()
        flat = teacher_logits.detach().float().reshape(-1, self.out_dim)
        count = flat.new_full((1, ), float(flat.shape[0]))
        stats = torch.cat([flat.sum(dim=0), count])
        self._pending_handle = (
            dist.all_reduce(stats, async_op=True) if _dist_on() else None)
        self._pending_stats = stats

    @torch.no_grad()
    def apply_center_update(self) -> None:
        """Fold the queued batch mean into ``center`` (no-op if none)."""
        if self._pending_stats is None:
            return
        if self._pending_handle is not None:
            self._pending_handle.wait()
        stats = self._pending_stats
        self._pending_stats, self._pending_handle = None, None
        count = stats[-1]
        batch_center = (stats[:-1] / count.clamp(min=1)).to(self.center)
        updated = (self.center * self.center_momentum +
                   batch_center.unsqueeze(0) * (1.0 - self.center_momentum))
        # No rows on any rank: keep the center (no host sync needed).
        self.center.copy_(torch.where(count > 0, updated, self.center))


@MODELS.register_module()
class DINOClsTokenLoss(_TeacherCentering):
    """DINO loss on CLS-token prototype scores (official ``DINOLoss``).

    ``forward`` is the cross-entropy ``-sum_k p_t[k] * log_softmax(s /
    student_temp)[k]`` averaged over every image ``b`` and every pair
    (student crop ``s``, teacher crop ``t``) of that image; with
    ``ignore_diagonal`` the pairs ``s == t`` (the same global crop seen by
    both) are left out of the sum and of the count.

    Teacher targets come from :meth:`sinkhorn_knopp_teacher` (DINOv3
    default) or :meth:`softmax_center_teacher` followed by
    :meth:`update_center` (DINOv2-style centring).

    Args:
        out_dim (int): Number of prototypes ``K``.
        student_temp (float): Student temperature. Defaults to 0.1.
        center_momentum (float): EMA momentum of ``center``. Defaults to
            0.9.
    """

    def __init__(self,
                 out_dim: int,
                 student_temp: float = 0.1,
                 center_momentum: float = 0.9):
        super().__init__(out_dim, student_temp, center_momentum)

    @torch.no_grad()
    def sinkhorn_knopp_teacher(self,
                               teacher_logits: Tensor,
                               teacher_temp: float,
                               n_iterations: int = 3) -> Tensor:
        """Teacher probabilities by Sinkhorn-Knopp over the global batch.

        Every rank must hold the same number of rows (``B`` is the local
        count times the world size, as official).

        Args:
            teacher_logits (Tensor): ``(B_local, K)`` teacher head outputs,
                e.g. all global crops flattened crop-major.
            teacher_temp (float): Teacher temperature.
            n_iterations (int): Sinkhorn iterations. Defaults to 3.

        Returns:
            Tensor: ``(B_local, K)`` float32, each row summing to 1.
        """
        if teacher_logits.ndim != 2:
            raise ValueError('teacher_logits must be (B, K), got shape '
                             f'{tuple(teacher_logits.shape)}.')
        self._check_last_dim('teacher_logits', teacher_logits)
        num_samples = teacher_logits.shape[0] * _world_size()
        return _sinkhorn_knopp(teacher_logits, teacher_temp, num_samples,
                               n_iterations)

    def forward(self,
                student_logits: Tensor,
                teacher_probs: Tensor,
                ignore_diagonal: bool = False) -> Tensor:
        """Mean cross-entropy over all (student crop, teacher crop) pairs.

        Args:
            student_logits (Tensor): ``(S, B, K)`` student head outputs,
                crop-major.
            teacher_probs (Tensor): ``(T, B, K)`` teacher probabilities (rows
                sum to 1), crop-major, same ``B`` and image order.
            ignore_diagonal (bool): Skip the pairs ``s == t`` (for ``s, t <
                min(S, T)``). Defaults to False.

        Returns:
            Tensor: Scalar, the loss summed over pairs and images divided by
            ``B * S * T`` (``B * (S * T - min(S, T))`` with
            ``ignore_diagonal``).
        """
        if student_logits.ndim != 3 or teacher_probs.ndim != 3:
            raise ValueError(
                'student_logits and teacher_probs must be (crops, B, K), got '
                f'{tuple(student_logits.shape)} and '
                f'{tuple(teacher_probs.shape)}.')
        self._check_last_dim('student_logits', student_logits)
        self._check_last_dim('teacher_probs', teacher_probs)
        n_student, batch, _ = student_logits.shape
        n_teacher = teacher_probs.shape[0]
        if teacher_probs.shape[1] != batch:
            raise ValueError(
                f'Batch sizes differ: student_logits has {batch} images, '
                f'teacher_probs has {teacher_probs.shape[1]}.')
        log_p = F.log_softmax(student_logits.float() / self.student_temp,
                              dim=-1)
        # pair_ce[s, t] = -sum_b sum_k p_t log q_s
        pair_ce = -torch.einsum('sbk,tbk->st', log_p, teacher_probs.float())
        n_terms = n_student * n_teacher
        if ignore_diagonal:
            n_diag = min(n_student, n_teacher)
            if n_terms == n_diag:
                raise ValueError('ignore_diagonal=True leaves no crop pairs '
                                 f'with {n_student} student and {n_teacher} '
                                 'teacher crops.')
            pair_ce = torch.diagonal_scatter(pair_ce,
                                             pair_ce.new_zeros(n_diag))
            n_terms -= n_diag
        return pair_ce.sum() / (batch * n_terms)


@MODELS.register_module()
class IBOTPatchLoss(_TeacherCentering):
    """iBOT loss on the student's masked patch tokens (official
    ``iBOTPatchLoss``).

    Per masked patch the cross-entropy ``-sum_k p_t[k] * log_softmax(s /
    student_temp)[k]``; a patch of image ``i`` is weighted by ``1 / m_i``
    (``m_i`` = masked patches of that image), the weighted sum is divided by
    the number of images ``B`` (images without a mask count, contributing
    0). So every masked image weighs the same, whatever its mask size.

    ``center`` is ``(1, K)`` (the official buffer is ``(1, 1, K)``); it
    broadcasts against ``(M, K)`` masked tokens and ``(B, N, K)`` tokens.

    Args:
        patch_out_dim (int): Number of prototypes ``K`` of the iBOT head.
        student_temp (float): Student temperature. Defaults to 0.1.
        center_momentum (float): EMA momentum of ``center``. Defaults to
            0.9.
    """

    def __init__(self,
                 patch_out_dim: int,
                 student_temp: float = 0.1,
                 center_momentum: float = 0.9):
        super().__init__(patch_out_dim, student_temp, center_momentum,
                         dim_name='patch_out_dim')
        self.patch_out_dim = patch_out_dim

    @torch.no_grad()
    def sinkhorn_knopp_teacher(self,
                               teacher_output: Tensor,
                               teacher_temp: float,
                               n_masked_patches_tensor: Union[Tensor, int],
                               n_iterations: int = 3) -> Tensor:
        """Teacher probabilities of the masked patches by Sinkhorn-Knopp.

        Args:
            teacher_output (Tensor): ``(M_local, K)`` teacher head outputs of
                this rank's masked patches.
            teacher_temp (float): Teacher temperature.
            n_masked_patches_tensor (Tensor | int): This rank's number of
                masked patches (a one-element tensor in the official code);
                summed over ranks (on a copy) to get ``B``.
            n_iterations (int): Sinkhorn iterations. Defaults to 3.

        Returns:
            Tensor: ``(M_local, K)`` float32, each row summing to 1.
        """
        if teacher_output.ndim != 2:
            raise ValueError('teacher_output must be (M, K), got shape '
                             f'{tuple(teacher_output.shape)}.')
        self._check_last_dim('teacher_output', teacher_output)
        num_samples = torch.as_tensor(
            n_masked_patches_tensor,
            device=teacher_output.device).detach().clone().reshape(-1)[:1]
        if _dist_on():
            dist.all_reduce(num_samples)
        return _sinkhorn_knopp(teacher_output, teacher_temp,
                               num_samples.float(), n_iterations)

    def _patch_ce(self, student_logits: Tensor, teacher_probs: Tensor):
        """``-sum_k t * log_softmax(s / student_temp)`` over the last dim."""
        log_p = F.log_softmax(student_logits.float() / self.student_temp,
                              dim=-1)
        return -(teacher_probs.float() * log_p).sum(dim=-1)

    def forward(self, student_patch_logits: Tensor,
                teacher_patch_probs: Tensor,
                student_masks_flat: Tensor) -> Tensor:
        """iBOT loss on full token grids (official ``forward``).

        Args:
            student_patch_logits (Tensor): ``(B, N, K)``.
            teacher_patch_probs (Tensor): ``(B, N, K)``.
            student_masks_flat (Tensor): ``(B, N)`` bool, True = masked.

        Returns:
            Tensor: Scalar, mean over images of the mean cross-entropy over
            that image's masked patches (0 for an image without mask).
        """
        self._check_last_dim('student_patch_logits', student_patch_logits)
        self._check_last_dim('teacher_patch_probs', teacher_patch_probs)
        if student_masks_flat.shape != student_patch_logits.shape[:-1]:
            raise ValueError(
                f'student_masks_flat {tuple(student_masks_flat.shape)} must '
                'match the token dims of student_patch_logits '
                f'{tuple(student_patch_logits.shape)}.')
        masks = student_masks_flat.float()
        ce = self._patch_ce(student_patch_logits, teacher_patch_probs)
        per_image = (ce * masks).sum(dim=-1) / masks.sum(dim=-1).clamp(min=1)
        return per_image.mean()

    def forward_masked(self,
                       student_patch_logits_masked: Tensor,
                       teacher_patch_probs_masked: Tensor,
                       student_masks_flat: Tensor,
                       n_masked_patches: Optional[int] = None,
                       masks_weight: Optional[Tensor] = None) -> Tensor:
        """iBOT loss on the masked patches only (what DINOv3 trains with).

        Rows of the first two arguments are the masked patches in the order
        of ``student_masks_flat.flatten().nonzero()`` (image by image).

        Args:
            student_patch_logits_masked (Tensor): ``(M, K)`` student head
                outputs of the masked patches.
            teacher_patch_probs_masked (Tensor): ``(M, K)`` teacher
                probabilities of the same patches.
            student_masks_flat (Tensor): ``(B, N)`` bool masks of the
                student's global crops; ``B`` divides the loss.
            n_masked_patches (int, optional): Keep only the first
                ``n_masked_patches`` rows (for padded inputs).
            masks_weight (Tensor, optional): ``(M,)`` per-patch weights;
                defaults to ``1 / m_i`` of the patch's image, computed from
                ``student_masks_flat``.

        Returns:
            Tensor: Scalar ``-sum(weight * sum_k t log q) / B``.
        """
        self._check_last_dim('student_patch_logits_masked',
                             student_patch_logits_masked)
        self._check_last_dim('teacher_patch_probs_masked',
                             teacher_patch_probs_masked)
        if student_masks_flat.ndim != 2:
            raise ValueError('student_masks_flat must be (B, N), got shape '
                             f'{tuple(student_masks_flat.shape)}.')
        masks = student_masks_flat.bool()
        ce = self._patch_ce(student_patch_logits_masked,
                            teacher_patch_probs_masked)
        if masks_weight is None:
            per_image = 1.0 / masks.sum(dim=-1).clamp(min=1).float()
            masks_weight = per_image.unsqueeze(-1).expand_as(masks)[masks]
        if n_masked_patches is not None:
            ce = ce[:int(n_masked_patches)]
        if masks_weight.shape != ce.shape:
            raise ValueError(
                f'{ce.shape[0]} masked patch scores but {masks_weight.shape} '
                'weights; the rows must be the masked patches of '
                'student_masks_flat (or pass n_masked_patches/masks_weight).')
        return (ce * masks_weight.to(ce)).sum() / masks.shape[0]


@MODELS.register_module()
class KoLeoLoss(nn.Module):
    """Kozachenko-Leonenko entropy regulariser (Sablayrolles et al., 2018).

    Features are L2-normalised; each one's nearest neighbour in the batch
    (largest inner product, itself excluded) is found without gradient and
    the loss is ``-mean_i log(||x_i - x_nn(i)|| + eps)``. Minimising it
    spreads the batch uniformly over the sphere. The distance is
    ``nn.PairwiseDistance(2, eps=1e-8)`` as official, i.e. ``||x - y +
    1e-8||``. Computed in float32. Local to the rank's batch (the official
    non-distributed ``KoLeoLoss``).
    """

    def __init__(self):
        super().__init__()
        self.pdist = nn.PairwiseDistance(p=2, eps=1e-8)

    @staticmethod
    @torch.no_grad()
    def pairwise_nn_inner(x: Tensor) -> Tensor:
        """Index of each row's nearest other row, unit vectors ``(B, D)``."""
        dots = x @ x.t()
        dots.fill_diagonal_(-1.0)  # never pick yourself (dots >= -1)
        return dots.argmax(dim=1)

    def forward(self, x: Tensor, eps: float = 1e-8) -> Tensor:
        """KoLeo loss of a batch of features.

        Args:
            x (Tensor): ``(B, D)`` features (e.g. the student's pre-head CLS
                tokens of one global crop), ``B >= 2``.
            eps (float): Normalisation and log epsilon. Defaults to 1e-8.

        Returns:
            Tensor: Scalar loss.
        """
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError('KoLeoLoss needs (B, D) features with B >= 2, '
                             f'got shape {tuple(x.shape)}.')
        with torch.autocast(x.device.type, enabled=False):
            x = F.normalize(x.float(), p=2, dim=-1, eps=eps)
            indices = self.pairwise_nn_inner(x)
            distances = self.pdist(x, x[indices])
            return -torch.log(distances + eps).mean()


@MODELS.register_module()
class GramLoss(nn.Module):
    """Gram anchoring loss (official ``GramLoss``).

    MSE between the patch-similarity matrices ``X X^T`` of the student and
    of the (Gram) teacher, after L2-normalising the features when
    ``apply_norm`` (cosine similarities). ``img_level=True`` builds one
    ``(N, N)`` matrix per image; ``False`` one ``(B*N, B*N)`` matrix over the
    whole local batch (the DINOv3 default config).

    Options on negative similarities: ``remove_neg`` zeroes them in both
    matrices. ``remove_only_teacher_neg`` zeroes the teacher's; as in the
    official code the student's are left unchanged (the official student
    condition tests the teacher matrix after its negatives were zeroed, so
    it never applies).

    Args:
        apply_norm (bool): L2-normalise the features. Defaults to True.
        remove_neg (bool): Zero negative similarities in both matrices.
            Defaults to False.
        remove_only_teacher_neg (bool): Zero the teacher's negative
            similarities. Defaults to False. Exclusive with ``remove_neg``.
    """

    def __init__(self,
                 apply_norm: bool = True,
                 remove_neg: bool = False,
                 remove_only_teacher_neg: bool = False):
        super().__init__()
        if remove_neg and remove_only_teacher_neg:
            raise ValueError('remove_neg and remove_only_teacher_neg are '
                             'exclusive; set at most one.')
        self.apply_norm = apply_norm
        self.remove_neg = remove_neg
        self.remove_only_teacher_neg = remove_only_teacher_neg

    def _gram(self, feats: Tensor, img_level: bool) -> Tensor:
        feats = feats.float()
        if self.apply_norm:
            feats = F.normalize(feats, dim=-1)
        if not img_level and feats.ndim == 3:
            feats = feats.flatten(0, 1)
        return feats @ feats.transpose(-1, -2)

    def forward(self,
                output_feats: Tensor,
                target_feats: Tensor,
                img_level: bool = True) -> Tensor:
        """MSE between the student's and the teacher's Gram matrices.

        Args:
            output_feats (Tensor): Student patch features ``(B, N, D)``, or
                ``(M, D)`` when ``img_level=False``.
            target_feats (Tensor): Teacher patch features, same shape.
            img_level (bool): Per-image Gram matrices (True) or one over all
                patches of the batch (False). Defaults to True.

        Returns:
            Tensor: Scalar, mean squared difference over all matrix entries.
        """
        if output_feats.shape != target_feats.shape:
            raise ValueError(
                f'output_feats {tuple(output_feats.shape)} and target_feats '
                f'{tuple(target_feats.shape)} must have the same shape.')
        if img_level and output_feats.ndim != 3:
            raise ValueError('img_level=True needs (B, N, D) features, got '
                             f'shape {tuple(output_feats.shape)}.')
        if output_feats.ndim not in (2, 3):
            raise ValueError('GramLoss takes (B, N, D) or (M, D) features, '
                             f'got shape {tuple(output_feats.shape)}.')
        target_sim = self._gram(target_feats, img_level)
        student_sim = self._gram(output_feats, img_level)
        if self.remove_neg:
            target_sim = target_sim.clamp(min=0)
            student_sim = student_sim.clamp(min=0)
        elif self.remove_only_teacher_neg:
            target_sim = target_sim.clamp(min=0)
        return F.mse_loss(student_sim, target_sim)
