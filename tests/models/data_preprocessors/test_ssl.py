"""SSLDataPreprocessor: crop-major batching of multi-crop inputs."""
import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate, pseudo_collate
from PIL import Image
from torch.utils.data import DataLoader

import dinov3_mm.datasets.transforms.multicrop  # noqa: F401  (registers)
import dinov3_mm.datasets.unlabeled  # noqa: F401  (registers)
from dinov3_mm.models.data_preprocessors.ssl import SSLDataPreprocessor
from dinov3_mm.registry import DATASETS, MODELS
from dinov3_mm.structures.data_sample import DataSample

LVD_MEAN = torch.tensor((0.485, 0.456, 0.406)) * 255
LVD_STD = torch.tensor((0.229, 0.224, 0.225)) * 255


def build(**kwargs) -> SSLDataPreprocessor:
    return MODELS.build(dict(type='SSLDataPreprocessor', **kwargs))


def _item(b: int, n_global=2, n_local=3, g=8, loc_size=4) -> dict:
    """Image ``b``: global crop c is filled with 100 + 10 b + c, local crop c
    with 10 b + c."""
    glob = torch.stack([torch.full((3, g, g), 100 + 10 * b + c,
                                   dtype=torch.uint8)
                        for c in range(n_global)])
    loc = torch.empty((0, 3, loc_size, loc_size), dtype=torch.uint8)
    if n_local:
        loc = torch.stack([
            torch.full((3, loc_size, loc_size), 10 * b + c, dtype=torch.uint8)
            for c in range(n_local)
        ])
    sample = DataSample(metainfo=dict(img_path=f'{b}.png'))
    return dict(inputs=dict(global_crops=glob, local_crops=loc),
                data_samples=sample)


def _batches(items):
    """The three batch layouts a dataloader can produce."""
    raw = dict(inputs=[i['inputs'] for i in items],
               data_samples=[i['data_samples'] for i in items])
    pseudo = pseudo_collate(items)
    stacked = dict(inputs=default_collate([i['inputs'] for i in items]),
                   data_samples=[i['data_samples'] for i in items])
    return dict(raw=raw, pseudo=pseudo, stacked=stacked)


@pytest.mark.parametrize('layout', ['raw', 'pseudo', 'stacked'])
def test_crop_major_order(layout):
    batch_size = 3
    items = [_item(b) for b in range(batch_size)]
    pre = build(mean=[0, 0, 0], std=[1, 1, 1])
    out = pre(_batches(items)[layout], training=True)
    inputs = out['inputs']
    assert inputs['n_global'] == 2 and inputs['n_local'] == 3
    assert inputs['batch_size'] == batch_size
    glob, loc = inputs['global_crops'], inputs['local_crops']
    assert glob.shape == (2 * batch_size, 3, 8, 8)
    assert loc.shape == (3 * batch_size, 3, 4, 4)
    assert glob.dtype == loc.dtype == torch.float32
    for c in range(2):
        for b in range(batch_size):
            assert torch.all(glob[c * batch_size + b] == 100 + 10 * b + c)
    for c in range(3):
        for b in range(batch_size):
            assert torch.all(loc[c * batch_size + b] == 10 * b + c)
    # unflatten(0, (n, B)) gives the crops of each image
    per_image = glob.unflatten(0, (2, batch_size))
    assert torch.all(per_image[1, 2] == 100 + 20 + 1)
    paths = [s.img_path for s in out['data_samples']]
    assert paths == ['0.png', '1.png', '2.png']


def test_normalisation_numbers():
    pre = build()  # lvd1689m
    torch.testing.assert_close(pre.mean.flatten(), LVD_MEAN)
    torch.testing.assert_close(pre.std.flatten(), LVD_STD)
    out = pre(pseudo_collate([_item(0), _item(1)]))['inputs']
    expected = (100 - LVD_MEAN) / LVD_STD  # image 0, global crop 0
    torch.testing.assert_close(out['global_crops'][0, :, 0, 0], expected)
    expected = (11 - LVD_MEAN) / LVD_STD  # image 1, local crop 1
    torch.testing.assert_close(out['local_crops'][1 * 2 + 1, :, 0, 0],
                               expected)
    sat = build(normalization='sat493m')
    torch.testing.assert_close(
        sat.mean.flatten(), torch.tensor((0.430, 0.411, 0.296)) * 255)
    explicit = build(mean=[10, 20, 30], std=[2, 2, 2], to_rgb=True)
    glob = explicit(pseudo_collate([_item(0)]))['inputs']['global_crops']
    assert glob[0, :, 0, 0].tolist() == [45, 40, 35]
    raw = build(normalization=None)(pseudo_collate([_item(0)]))
    assert raw['inputs']['global_crops'][0, 0, 0, 0].item() == 100


def test_no_local_crops():
    items = [_item(b, n_local=0) for b in range(2)]
    out = build()(pseudo_collate(items))['inputs']
    assert out['local_crops'].shape == (0, 3, 4, 4)
    assert out['n_local'] == 0 and out['batch_size'] == 2
    assert out['global_crops'].shape == (4, 3, 8, 8)


def test_plain_batch_like_cls_preprocessor():
    pre = build()
    images = [torch.full((3, 16, 12), v, dtype=torch.uint8)
              for v in (0, 128, 255)]
    samples = [DataSample().set_gt_label(i) for i in range(3)]
    out = pre(dict(inputs=images, data_samples=samples))
    assert out['inputs'].shape == (3, 3, 16, 12)
    torch.testing.assert_close(out['inputs'][1, :, 0, 0],
                               (128 - LVD_MEAN) / LVD_STD)
    assert out['data_samples'] is not None and len(out['data_samples']) == 3
    stacked = pre(dict(inputs=torch.stack(images)))
    torch.testing.assert_close(stacked['inputs'], out['inputs'])
    assert stacked['data_samples'] is None
    with pytest.raises(ValueError, match='same'):
        pre(dict(inputs=[images[0], torch.zeros((3, 16, 16),
                                                dtype=torch.uint8)]))


def test_errors():
    with pytest.raises(ValueError, match='both mean and std'):
        build(mean=[1, 2, 3])
    with pytest.raises(ValueError, match='Unknown normalization'):
        build(normalization='nope')
    pre = build()
    mixed = [_item(0), _item(1, n_local=2)]
    with pytest.raises(ValueError, match='same'):
        pre(pseudo_collate(mixed))
    with pytest.raises(KeyError, match='local_crops'):
        pre(dict(inputs=[dict(global_crops=_item(0)['inputs']
                              ['global_crops'])]))


def test_moves_to_model_device():
    pre = build()
    assert pre.device == torch.device('cpu')
    out = pre(pseudo_collate([_item(0)]))['inputs']
    assert out['global_crops'].device == pre.device


def test_real_dataloader_with_pseudo_collate(tmp_path):
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(40, 60), (64, 48), (50, 50), (30, 90)]):
        sub = tmp_path / 'data' / ('a' if i % 2 else 'b')
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3),
                                     dtype=np.uint8)).save(sub / f'{i}.png')
    dataset = DATASETS.build(dict(
        type='UnlabeledImageDataset', data_root=str(tmp_path / 'data'),
        pipeline=[
            dict(type='LoadImage'),
            dict(type='DINOMultiCrop', global_crops_size=32,
                 local_crops_size=16, local_crops_number=2),
            dict(type='PackMultiCropInputs'),
        ]))
    loader = DataLoader(dataset, batch_size=3, shuffle=False,
                        collate_fn=pseudo_collate, num_workers=0)
    np.random.seed(0)
    batch = next(iter(loader))
    assert isinstance(batch['inputs']['global_crops'], list)  # dict of lists
    pre = build(mean=[0, 0, 0], std=[1, 1, 1])
    out = pre(batch, training=True)
    inputs = out['inputs']
    assert inputs['global_crops'].shape == (6, 3, 32, 32)
    assert inputs['local_crops'].shape == (6, 3, 16, 16)
    assert (inputs['n_global'], inputs['n_local'],
            inputs['batch_size']) == (2, 2, 3)
    for b in range(3):
        for c in range(2):
            torch.testing.assert_close(
                inputs['global_crops'][c * 3 + b],
                batch['inputs']['global_crops'][b][c].float())
            torch.testing.assert_close(
                inputs['local_crops'][c * 3 + b],
                batch['inputs']['local_crops'][b][c].float())
    paths = [s.img_path for s in out['data_samples']]
    assert paths == [dataset.get_data_info(i)['img_path'] for i in range(3)]
