"""DepthwiseConv2d's grouped weight gradient equals nn.Conv2d's gradients,
and the layer is a plain nn.Conv2d wherever that gradient is not used."""
import pytest
import torch
from torch import nn

from dinov3_mm.models.layers.depthwise_conv import (MAX_MAP_PIXELS,
                                                    DepthwiseConv2d,
                                                    depthwise_weight_grad)


def _plain_copy(layer: DepthwiseConv2d) -> nn.Conv2d:
    plain = nn.Conv2d(layer.in_channels, layer.out_channels,
                      layer.kernel_size, padding=layer.padding,
                      groups=layer.groups)
    plain.load_state_dict(layer.state_dict())
    return plain


@pytest.mark.parametrize('channels,size,memory_format', [
    (8, 2, torch.contiguous_format), (16, 4, torch.channels_last),
    (6, 9, torch.contiguous_format), (12, 16, torch.channels_last)])
def test_gradients_match_nn_conv2d(channels, size, memory_format):
    torch.manual_seed(0)
    layer = DepthwiseConv2d(channels)
    plain = _plain_copy(layer)
    x = torch.randn(5, channels, size, size).contiguous(
        memory_format=memory_format)
    x_ours, x_plain = (x.clone().requires_grad_() for _ in range(2))
    target = torch.randn(5, channels, size, size)
    assert layer._grouped_weight_grad(x_ours)

    (layer(x_ours) * target).sum().backward()
    (plain(x_plain) * target).sum().backward()

    torch.testing.assert_close(x_ours.grad, x_plain.grad)
    torch.testing.assert_close(layer.weight.grad, plain.weight.grad,
                               rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(layer.bias.grad, plain.bias.grad,
                               rtol=1e-4, atol=1e-4)
    assert layer.weight.grad.abs().sum() > 0


def test_weight_grad_formula_by_hand():
    """grad_w[c, i, j] = sum over samples and pixels of grad_out times the
    padded input shifted by (i, j)."""
    torch.manual_seed(1)
    x, grad_out = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    padded = nn.functional.pad(x, (1, 1, 1, 1))
    by_hand = torch.stack([
        torch.stack([(grad_out * padded[..., i:i + 4, j:j + 5]).sum((0, 2, 3))
                     for j in range(3)], -1) for i in range(3)], -2)
    torch.testing.assert_close(depthwise_weight_grad(x, grad_out, 3, 1),
                               by_hand.unsqueeze(1))


def test_bias_free_layer_on_an_input_without_gradient():
    """The first layer's case: the input needs no gradient, no bias."""
    torch.manual_seed(2)
    layer = DepthwiseConv2d(4, kernel_size=3)
    layer.bias = None
    plain = nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False)
    plain.weight.data.copy_(layer.weight.data)
    x = torch.randn(2, 4, 6, 6)
    layer(x).square().sum().backward()
    plain(x).square().sum().backward()
    torch.testing.assert_close(layer.weight.grad, plain.weight.grad,
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('case', ['large_map', 'no_grad', 'autocast',
                                  'float64', 'frozen', 'compiling'])
def test_plain_conv_elsewhere(case, monkeypatch):
    layer = DepthwiseConv2d(4)
    side = int(MAX_MAP_PIXELS**0.5) + 1 if case == 'large_map' else 8
    x = torch.randn(2, 4, side, side)
    if case == 'float64':
        layer, x = layer.double(), x.double()
    if case == 'frozen':
        layer.requires_grad_(False)
    if case == 'compiling':  # inductor fuses the plain convolution itself
        monkeypatch.setattr(torch.compiler, 'is_compiling', lambda: True)
    calls = []
    monkeypatch.setattr(
        'dinov3_mm.models.layers.depthwise_conv._DepthwiseConv2dFunction.'
        'apply', lambda *args: calls.append(args))
    if case == 'no_grad':
        with torch.no_grad():
            out = layer(x)
    elif case == 'autocast':
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = layer(x)
    else:
        out = layer(x)
    assert not calls
    assert out.shape == x.shape
