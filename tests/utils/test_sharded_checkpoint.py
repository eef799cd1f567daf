"""Sharded checkpoint files: merging shards back into one checkpoint."""
import pytest
import torch

from dinov3_mm.utils.checkpoint_io import CheckpointError, load_weights_only
from dinov3_mm.utils.sharded_checkpoint import (SHARD_INDEX_KEY,
                                                merge_shards, shard_file_name)

FULL = torch.arange(15.).reshape(5, 3)


def _index(world=2, shape=(5, 3)):
    return {'meta': {'epoch': 3}, SHARD_INDEX_KEY: dict(
        world_size=world,
        files=[f'epoch_3.pth.shard{r}-of-{world}' for r in range(world)],
        sharded=[(['state_dict', 'w'], list(shape)),
                 (['optimizer', 'state', 0, 'exp_avg'], list(shape))])}


def _shards():
    """FULL split as torch.chunk / FSDP2 split it: rows 0-2 and 3-4."""
    return [{'state_dict': {'w': rows, 'step': torch.tensor(7.)},
             'optimizer': {'state': {0: {'exp_avg': 2 * rows,
                                         'step': torch.tensor(7.)}},
                           'param_groups': [{'lr': 0.1, 'params': [0]}]}}
            for rows in torch.chunk(FULL, 2)]


def test_merge_concatenates_sharded_rows_in_rank_order():
    merged = merge_shards(_index(), _shards(), 'epoch_3.pth')
    assert torch.equal(merged['state_dict']['w'], FULL)
    assert torch.equal(merged['optimizer']['state'][0]['exp_avg'], 2 * FULL)
    assert merged['state_dict']['step'] == 7  # unsharded: rank 0's
    assert merged['meta'] == {'epoch': 3} and SHARD_INDEX_KEY not in merged


def test_merge_refuses_shards_of_another_save():
    with pytest.raises(ValueError, match=r'add up to \[5, 3\], the index '
                       r'says \[6, 3\]'):
        merge_shards(_index(shape=(6, 3)), _shards(), 'epoch_3.pth')
    with pytest.raises(ValueError, match='written by 3 ranks but 2 shards'):
        merge_shards(_index(world=3), _shards(), 'epoch_3.pth')


def test_reading_the_index_merges_its_shard_files(tmp_path):
    path = str(tmp_path / 'epoch_3.pth')
    torch.save(_index(), path)
    for rank, shard in enumerate(_shards()):
        torch.save(shard, shard_file_name(path, rank, 2))
    assert torch.equal(load_weights_only(path)['state_dict']['w'], FULL)
    assert 'state_dict' not in load_weights_only(path, merge=False)
    with open(path, 'rb') as f:
        data = f.read()
    with pytest.raises(CheckpointError, match='read it from its folder'):
        load_weights_only(data)
    for stranger in ({'state_dict': {'w': FULL}}, {'state_dict': {}}):
        torch.save(stranger, shard_file_name(path, 1, 2))
        with pytest.raises(CheckpointError, match='a shard file belongs to '
                           'another save'):
            load_weights_only(path)
