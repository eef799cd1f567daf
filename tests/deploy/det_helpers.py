"""Tiny detector checkpoints on disk for the detection deployment,
inference, tool and hook tests.

A "checkpoint" is a randomly initialised tiny ``DINOv3DETR`` (ViT embed 64,
depth 2, 8 queries) saved in the dinov3_mm format, with its config dumped
next to it and a generated COCO instance set (64 px images) as its test set.
"""
import os.path as osp

import cv2
import torch
from mmengine.config import Config

TINY_VIT = dict(type='DINOv3ViT',
                arch=dict(embed_dims=64, num_layers=2, num_heads=2),
                out_type='featmap', out_indices=(1, ))
SIZE = 64


def tiny_det_config(data_root: str, with_mask: bool,
                    size: int = SIZE) -> Config:
    """A tiny detector config whose test set is ``data_root``'s test split."""
    neck = dict(type='SimpleFPN', in_channels=64, out_channels=64,
                scales=(4, 2, 1, 0.5) if with_mask else (2, 1, 0.5))
    model = dict(
        type='DINOv3DETR', num_classes=4, with_mask=with_mask,
        backbone=TINY_VIT, neck=neck, in_channels=64,
        in_levels=(1, 2, 3) if with_mask else (0, 1, 2), embed_dims=64,
        num_queries=8, num_groups=2,
        decoder=dict(num_layers=2, ffn_dims=128, num_heads=4,
                     cross_heads=4),
        # no test_cfg: k = min(num_select 100, 8 queries x 4 classes) = 32
        data_preprocessor=dict(pad_size_divisor=32))
    pipeline = [
        dict(type='LoadImage'),
        dict(type='LoadDetAnnotations', with_mask=with_mask),
        dict(type='DetLetterbox', size=(size, size)),
        dict(type='PackDetInputs'),
    ]
    dataset = dict(type='CocoDetDataset', data_root=data_root,
                   ann_file='annotations/instances_test.json',
                   data_prefix=dict(img='test/'), with_mask=with_mask,
                   test_mode=True, pipeline=pipeline)
    return Config(dict(
        default_scope='dinov3_mm', model=model,
        test_dataloader=dict(batch_size=2, num_workers=0,
                             sampler=dict(type='DefaultSampler',
                                          shuffle=False),
                             dataset=dataset)))


def make_det_checkpoint(folder: str, with_mask: bool, seed: int = 0,
                        num_images: int = 3) -> dict:
    """Write a generated instance set, a tiny detector config and its
    random checkpoint under ``folder``.

    Returns:
        dict: ``config``, ``checkpoint``, ``data``, ``classes``,
        ``cat_ids`` and ``images`` (the test PNGs plus a wide and a tall
        one, so letterboxing pads both ways).
    """
    from dinov3_mm.apis import init_model
    from dinov3_mm.datasets.synthetic_instances import \
        write_instance_shapes_dataset
    data = osp.join(folder, 'instances')
    write_instance_shapes_dataset(
        data, counts=dict(train=0, val=0, test=num_images), size=SIZE,
        seed=seed, empty_fraction=0.0)
    cfg = tiny_det_config(data, with_mask)
    torch.manual_seed(seed)
    model = init_model(cfg)
    import json
    with open(osp.join(data, 'annotations', 'instances_test.json')) as f:
        cats = json.load(f)['categories']
    classes = [c['name'] for c in cats]
    cat_ids = [c['id'] for c in cats]
    ckpt = osp.join(folder, 'model.pth')
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=classes,
                                                cat_ids=cat_ids))), ckpt)
    cfg_path = osp.join(folder, 'config.py')
    cfg.dump(cfg_path)
    images = [osp.join(data, 'test', f'test_{i:05d}.png')
              for i in range(num_images)]
    source = cv2.imread(images[0])
    for name, (w, h) in (('wide.png', (90, 50)), ('tall.png', (40, 72))):
        path = osp.join(folder, name)
        cv2.imwrite(path, cv2.resize(source, (w, h)))
        images.append(path)
    return dict(config=cfg_path, checkpoint=ckpt, data=data, classes=classes,
                cat_ids=cat_ids, images=images)
