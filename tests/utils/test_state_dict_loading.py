"""Whole-model checkpoints load strictly, with a report when they do not fit."""
import uuid

import pytest
import torch
from mmengine.logging import MMLogger
from torch import nn

from dinov3_mm.utils.state_dict_loading import (CheckpointMismatchError,
                                                compare_state_dict,
                                                load_model_weights)


def make_model(width=4, classes=2):
    return nn.Sequential(nn.Linear(3, width), nn.ReLU(),
                         nn.Linear(width, classes))


def test_exact_checkpoint_loads():
    src, dst = make_model(), make_model()
    diff = load_model_weights(dst, {'state_dict': src.state_dict()})
    assert diff.exact and diff.matched == 4
    assert torch.equal(dst[2].weight, src[2].weight)


def test_module_prefix_of_ddp_checkpoints_is_removed():
    src, dst = make_model(), make_model()
    state = {f'module.{k}': v for k, v in src.state_dict().items()}
    assert load_model_weights(dst, {'state_dict': state}).exact


def test_other_task_checkpoint_is_refused_with_a_report():
    src, dst = make_model(classes=10), make_model(classes=2)
    state = dict(src.state_dict(), **{'aux.weight': torch.zeros(1)})
    del state['0.bias']
    before = dst[0].weight.clone()
    with pytest.raises(CheckpointMismatchError) as info:
        load_model_weights(dst, {'state_dict': state},
                           checkpoint_name='runs/a/epoch_3.pth',
                           config_name='configs/b.py')
    message = str(info.value)
    assert 'runs/a/epoch_3.pth does not match the model of configs/b.py ' \
        '(Sequential)' in message
    assert '1 missing (in the model, not in the checkpoint): 0.bias' in message
    assert '1 unexpected (in the checkpoint, not in the model): aux.weight' \
        in message
    assert '2.weight: checkpoint (10, 4) vs model (2, 4)' in message
    assert 'load_strict = False' in message
    assert torch.equal(dst[0].weight, before), 'nothing may be loaded'


def test_partial_load_is_explicit_and_reported(capsys):
    # a logger of this test's own, writing to the captured stdout
    MMLogger.get_instance(f'partial_{uuid.uuid4().hex}', log_level='INFO')
    src, dst = make_model(classes=10), make_model(classes=2)
    diff = load_model_weights(dst, {'state_dict': src.state_dict()},
                              strict=False, checkpoint_name='other.pth')
    assert diff.matched == 2 and len(diff.mismatched) == 2
    assert torch.equal(dst[0].weight, src[0].weight)
    assert not torch.equal(dst[2].bias[:2], src[2].bias[:2])
    out = capsys.readouterr()
    assert 'Partial load (strict=False) of other.pth' in out.out + out.err


def test_nothing_matching_is_refused_even_when_not_strict():
    with pytest.raises(CheckpointMismatchError, match='0 tensors match'):
        load_model_weights(make_model(), {'x': torch.zeros(1)}, strict=False)


def test_compare_reports_every_kind():
    diff = compare_state_dict(make_model(), {'0.weight': torch.zeros(5, 3)})
    assert diff.mismatched == [('0.weight', (5, 3), (4, 3))]
    assert diff.missing == ['0.bias', '2.bias', '2.weight']
    assert not diff.exact
