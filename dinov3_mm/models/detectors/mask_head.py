"""Instance masks from query embeddings and stride-4 pixel embeddings."""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .decoder import MLP


class QueryMaskHead(nn.Module):
    """One mask per query: ``mask = <query embedding, pixel embedding>``.

    Pixel embeddings come from the stride-4 feature level (3x3 conv, group
    norm, ReLU, 1x1 conv); query embeddings from a 3-layer MLP on the
    decoder output. Logits are computed on demand for chosen queries only, so
    training (matched queries) and inference (top-k queries) never hold a
    mask for every query at full resolution.

    Args:
        in_channels (int): Channels of the stride-4 map.
        query_dims (int): Channels of the decoder queries.
        mask_dims (int): Embedding channels. Defaults to 64.
    """

    def __init__(self, in_channels: int, query_dims: int,
                 mask_dims: int = 64):
        super().__init__()
        self.pixel_embed = nn.Sequential(
            nn.Conv2d(in_channels, mask_dims, 3, padding=1),
            nn.GroupNorm(min(32, mask_dims), mask_dims), nn.ReLU(inplace=True),
            nn.Conv2d(mask_dims, mask_dims, 1))
        self.query_embed = MLP(query_dims, query_dims, mask_dims, 3)

    def pixels(self, feat: Tensor) -> Tensor:
        """``(B, mask_dims, h, w)`` pixel embeddings of a stride-4 map."""
        return self.pixel_embed(feat)

    def logits(self, queries: Tensor, pixels: Tensor) -> Tensor:
        """Mask logits of ``(..., Q, C)`` queries on ``(..., D, h, w)``
        pixel embeddings: ``(..., Q, h, w)``."""
        embed = self.query_embed(queries)
        return torch.einsum('...qd,...dhw->...qhw', embed, pixels)


def masks_to_original(mask_logits: Tensor, canvas_hw, ori_hw, scale_factor,
                      border=(0, 0)) -> Tensor:
    """Resample low-resolution logits to the original image, in one step.

    The logits cover the padded network input (``canvas_hw`` pixels); the
    original image occupies ``border + ori * scale_factor`` of it. Each
    original pixel centre is mapped into the canvas and sampled bilinearly.

    Args:
        mask_logits (Tensor): ``(K, h, w)``.
        canvas_hw (tuple[int, int]): Padded input size.
        ori_hw (tuple[int, int]): Original image size.
        scale_factor (tuple[float, float]): ``(sx, sy)``.
        border (tuple[float, float]): ``(left, top)`` letterbox offset.

    Returns:
        Tensor: ``(K, H_ori, W_ori)`` logits.
    """
    canvas_h, canvas_w = canvas_hw
    ori_h, ori_w = int(ori_hw[0]), int(ori_hw[1])
    sx, sy = float(scale_factor[0]), float(scale_factor[1])
    device = mask_logits.device
    xs = ((torch.arange(ori_w, device=device) + 0.5) * sx +
          border[0]) / canvas_w * 2 - 1
    ys = ((torch.arange(ori_h, device=device) + 0.5) * sy +
          border[1]) / canvas_h * 2 - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing='xy'), -1)
    grid = grid[None].expand(mask_logits.shape[0], -1, -1, -1)
    return F.grid_sample(mask_logits[:, None].float(), grid.float(),
                         mode='bilinear', align_corners=False)[:, 0]
