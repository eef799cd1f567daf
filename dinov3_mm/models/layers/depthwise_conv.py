"""Depthwise convolution with a cheaper weight gradient on small CPU maps.

oneDNN computes the weight gradient of a depthwise convolution slowly on
small feature maps: for ConvNeXt's 7x7 kernel on a 4x4 map with 128
channels (batch 16) it takes about 1.7 ms, 15 times its input gradient.
The same gradient is a grouped convolution of the input with the output
gradient, one group per (channel, sample) pair, summed over the samples;
at these sizes oneDNN runs that several times faster. ``DepthwiseConv2d``
takes this route for fp32 training on the CPU when the map is small, and
is a plain ``nn.Conv2d`` everywhere else.
"""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Largest map (H * W) on which the grouped-convolution weight gradient was
#: faster than oneDNN's (ConvNeXt's 7x7 depthwise convolutions, 2 CPU cores):
#: faster from 2x2 to 28x28, slower at 56x56.
MAX_MAP_PIXELS = 32 * 32


def depthwise_weight_grad(x: Tensor, grad_out: Tensor,
                          kernel_size: int, padding: int) -> Tensor:
    """Weight gradient of a stride-1 depthwise convolution.

    ``grad_w[c, 0, i, j] = sum_{b, h, w} grad_out[b, c, h, w] *
    x_padded[b, c, h + i, w + j]``: a convolution of each (sample, channel)
    plane of ``x`` with the matching plane of ``grad_out`` as its kernel.

    Args:
        x (Tensor): The convolution's input, (B, C, H, W).
        grad_out (Tensor): Gradient of its output, (B, C, H, W).
        kernel_size (int): Side of the square kernel.
        padding (int): Zero padding on every side.

    Returns:
        Tensor: (C, 1, kernel_size, kernel_size).
    """
    batch, channels, height, width = x.shape
    planes = x.transpose(0, 1).reshape(1, channels * batch, height, width)
    kernels = grad_out.transpose(0, 1).reshape(channels * batch, 1, height,
                                               width)
    per_sample = F.conv2d(planes, kernels, padding=padding,
                          groups=channels * batch)
    return per_sample.view(channels, batch, kernel_size,
                           kernel_size).sum(1).unsqueeze(1)


class _DepthwiseConv2dFunction(torch.autograd.Function):
    """Depthwise conv2d (stride 1, square kernel) with the grouped weight
    gradient above; the forward and input gradient are torch's."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor,
                padding: int) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, padding=padding, groups=x.shape[1])

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.nn.grad.conv2d_input(
                x.shape, weight, grad_out, padding=ctx.padding,
                groups=x.shape[1])
        if ctx.needs_input_grad[1]:
            grad_w = depthwise_weight_grad(x, grad_out, weight.shape[-1],
                                           ctx.padding)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None


class DepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2,
    groups=dim)`` whose weight gradient is computed by
    :func:`depthwise_weight_grad` in fp32 CPU training on maps of at most
    :data:`MAX_MAP_PIXELS` pixels (same values to float rounding).

    Parameters and their names are ``nn.Conv2d``'s.

    Args:
        dim (int): Input and output channels.
        kernel_size (int): Side of the square kernel (odd). Defaults to 7.
    """

    def __init__(self, dim: int, kernel_size: int = 7) -> None:
        super().__init__(dim, dim, kernel_size, padding=kernel_size // 2,
                         groups=dim)

    def _grouped_weight_grad(self, x: Tensor) -> bool:
        return (torch.is_grad_enabled() and self.weight.requires_grad
                and x.device.type == 'cpu' and x.dtype == torch.float32
                and self.weight.dtype == torch.float32
                and not torch.is_autocast_enabled('cpu')
                and not torch.compiler.is_compiling()
                and x.shape[-2] * x.shape[-1] <= MAX_MAP_PIXELS)

    def forward(self, x: Tensor) -> Tensor:
        if self._grouped_weight_grad(x):
            return _DepthwiseConv2dFunction.apply(x, self.weight, self.bias,
                                                  self.padding[0])
        return super().forward(x)
