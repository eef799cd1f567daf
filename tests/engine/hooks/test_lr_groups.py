"""Names of the per-group learning rates (engine/hooks/lr_groups.py)."""
import torch
from torch import nn

from dinov3_mm.engine.hooks.lr_groups import (base_group_index,
                                              lr_group_labels)


class _Net(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
        self.neck = nn.Linear(2, 2)
        self.head = nn.Linear(2, 2)


def _per_parameter_groups(net, mults):
    """mmengine's paramwise groups: one per parameter."""
    groups = []
    for name, param in net.named_parameters():
        mult = next((m for key, m in mults.items() if key in name), 1.0)
        groups.append(dict(params=[param], lr=0.1 * mult))
    return groups


def test_one_rate_needs_no_names():
    net = _Net()
    groups = torch.optim.SGD(net.parameters(), lr=0.1).param_groups
    assert lr_group_labels(groups) == []
    assert base_group_index(groups, 0.1) == 0


def test_per_parameter_groups_are_named_by_module():
    net = _Net()
    groups = _per_parameter_groups(net, {'backbone': 0.1})
    names = {id(p): n for n, p in net.named_parameters()}
    labels = lr_group_labels(groups, names)
    assert labels == [('backbone', 0), ('head+neck', 4)]
    assert base_group_index(groups, 0.1) == 4


def test_layer_decay_groups_are_named_by_layer():
    groups = [
        dict(params=[], param_names=['backbone.patch_embed.proj.weight'],
             lr=0.002, layer_id=0),
        dict(params=[], param_names=['backbone.cls_token'], lr=0.01,
             layer_id=0),
        dict(params=[], param_names=['backbone.blocks.0.attn.qkv.weight'],
             lr=0.05, layer_id=1),
        dict(params=[], param_names=['head.fc.weight', 'head.fc.bias'],
             lr=0.1, layer_id=None),
    ]
    assert lr_group_labels(groups) == [
        ('backbone.layer_0.patch_embed.proj', 0), ('backbone.layer_0', 1),
        ('backbone.layer_1', 2), ('head', 3)]
    assert base_group_index(groups, 0.1) == 3


def test_scheduled_rates_keep_their_starting_names():
    groups = [dict(params=[], param_names=['backbone.w'], lr=0.0,
                   initial_lr=0.01, layer_id=0),
              dict(params=[], param_names=['head.w'], lr=0.0,
                   initial_lr=0.1, layer_id=None)]
    assert lr_group_labels(groups) == [('backbone.layer_0', 0), ('head', 1)]
    assert base_group_index(groups, 0.1) == 1
