"""Write the generated shapes datasets used by the demo and recipe configs.

Classification (3 classes, ImageFolder splits) or, with ``--seg``,
segmentation (background, circle, square, triangle on textured backgrounds,
mmseg ``img_dir/ann_dir`` folders with train and val splits). With ``--seg
--texture`` the segmentation classes differ by texture only (background,
stripes, checker, dots, all in the background's two colours).
With ``--instances`` it writes an instance segmentation dataset in COCO
format (circles, squares, triangles and stars that touch and overlap, on
textured backgrounds, some images without objects): ``<root>/{train,val,
test}/*.png`` and ``<root>/annotations/instances_{split}.json`` (RLE masks).

The settings are recorded in ``<root>/shapes_dataset.json``. An existing
dataset written with the same settings is kept; one written with other
settings is an error unless ``--force`` replaces it (its split folders are
removed first, so no old image stays behind).

Examples::

    python tools/generate_shapes_dataset.py data/shapes --train 100 --val 30 --test 30
    python tools/generate_shapes_dataset.py data/seg_shapes --seg --train 256 --val 64 --size 64
    python tools/generate_shapes_dataset.py --seg --texture  # data/seg_textures
    python tools/generate_shapes_dataset.py --instances  # data/instance_shapes
    python tools/generate_shapes_dataset.py data/inst --instances \
        --train 60 --val 20 --test 20 --size 96 --max-objects 4
"""
import argparse
import json
import os.path as osp
import shutil
import sys
from typing import Dict, Optional

from dinov3_mm.datasets.synthetic import write_shape_dataset
from dinov3_mm.datasets.synthetic_instances import (
    DEFAULT_COUNTS, write_instance_shapes_dataset)
from dinov3_mm.datasets.synthetic_seg import write_seg_shapes_dataset
from dinov3_mm.datasets.synthetic_texture import write_texture_seg_dataset

SETTINGS_FILE = 'shapes_dataset.json'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root', nargs='?', default=None,
                        help='output folder (default data/shapes, or '
                        'data/seg_shapes with --seg, data/seg_textures with '
                        '--seg --texture, data/instance_shapes with '
                        '--instances)')
    parser.add_argument('--seg', action='store_true',
                        help='write the segmentation dataset')
    parser.add_argument('--texture', action='store_true',
                        help='with --seg: classes that differ by texture '
                        '(stripes, checker, dots) in the colours of the '
                        'background instead of coloured shapes')
    parser.add_argument('--instances', action='store_true',
                        help='write the COCO-format instance segmentation '
                        'dataset (default 3000/100/100 images of 160 px)')
    parser.add_argument('--max-objects', type=int, default=6,
                        help='with --instances: most objects per image '
                        '(default 6)')
    parser.add_argument('--train', type=int, default=None,
                        help='images per class in train/ (default 100); '
                        'with --seg: train images (default 256); with '
                        '--instances: train images (default 3000)')
    parser.add_argument('--val', type=int, default=None,
                        help='default 30 per class; with --seg 64 images; '
                        'with --instances 100 images')
    parser.add_argument('--test', type=int, default=None,
                        help='images per class (default 30); with '
                        '--instances test images (default 100); not used '
                        'with --seg')
    parser.add_argument('--size', type=int, default=None,
                        help='image side (default 224; 64 with --seg; 160 '
                        'with --instances)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--force', action='store_true',
                        help='replace an existing dataset (its split '
                        'folders are deleted first)')
    args = parser.parse_args(argv)
    if args.texture and not args.seg:
        parser.error('--texture needs --seg')
    if args.instances and args.seg:
        parser.error('--instances and --seg write different datasets; give '
                     'one of them')
    return args


def requested_settings(args) -> Dict:
    """The dataset ``args`` ask for, as recorded in :data:`SETTINGS_FILE`."""
    if args.instances:
        given = dict(train=args.train, val=args.val, test=args.test)
        return dict(task='instances',
                    **{split: DEFAULT_COUNTS[split] if num is None else num
                       for split, num in given.items()},
                    size=args.size or 160, max_objects=args.max_objects,
                    seed=args.seed)
    if args.seg:
        settings = dict(task='segmentation',
                        train=256 if args.train is None else args.train,
                        val=64 if args.val is None else args.val,
                        size=args.size or 64, seed=args.seed)
        if args.texture:
            settings['style'] = 'texture'
        return settings
    return dict(task='classification',
                train=100 if args.train is None else args.train,
                val=30 if args.val is None else args.val,
                test=30 if args.test is None else args.test,
                size=args.size or 224, seed=args.seed)


def describe(settings: Dict) -> str:
    """``'100/30/30 images per class, 224 px, seed 0'`` and the like."""
    if settings['task'] == 'instances':
        counts = (f"instances, {settings['train']}/{settings['val']}/"
                  f"{settings['test']} images, up to "
                  f"{settings['max_objects']} objects")
    elif settings['task'] == 'segmentation':
        counts = f"{settings['train']} train / {settings['val']} val images"
        if settings.get('style') == 'texture':
            counts = f'textures, {counts}'
    else:
        counts = (f"{settings['train']}/{settings['val']}/"
                  f"{settings['test']} images per class")
    return f"{counts}, {settings['size']} px, seed {settings['seed']}"


def recorded_settings(root: str) -> Optional[Dict]:
    """Settings of the dataset in ``root``; None when not recorded."""
    path = osp.join(root, SETTINGS_FILE)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def split_folders(settings: Dict):
    if settings['task'] == 'instances':
        return ['train', 'val', 'test', 'annotations']
    if settings['task'] == 'segmentation':
        return ['img_dir', 'ann_dir']
    return ['train', 'val', 'test']


def existing_dataset(root: str, settings: Dict) -> bool:
    first = dict(segmentation='img_dir/train',
                 instances='annotations').get(settings['task'], 'train')
    return osp.isdir(osp.join(root, first))


def default_root(args) -> str:
    if args.instances:
        return 'data/instance_shapes'
    if not args.seg:
        return 'data/shapes'
    return 'data/seg_textures' if args.texture else 'data/seg_shapes'


def main(argv=None) -> int:
    args = parse_args(argv)
    wanted = requested_settings(args)
    root = args.root or default_root(args)
    if existing_dataset(root, wanted) and not args.force:
        found = recorded_settings(root)
        if found is None:
            print(f'{root} exists (settings not recorded); keeping it '
                  '(--force replaces it)')
            return 0
        if found == wanted:
            print(f'{root} exists with the same settings ({describe(found)})'
                  '; keeping it')
            return 0
        print(f'error: {root} holds a shapes dataset with other settings '
              f'({describe(found)}; asked for {describe(wanted)}).\n'
              'Pass --force to replace it, or choose another folder.',
              file=sys.stderr)
        return 1
    for name in split_folders(wanted):
        shutil.rmtree(osp.join(root, name), ignore_errors=True)
    if args.instances:
        write_instance_shapes_dataset(
            root, num_train=wanted['train'], num_val=wanted['val'],
            num_test=wanted['test'], size=wanted['size'],
            max_objects=wanted['max_objects'], seed=args.seed)
    elif args.texture:
        write_texture_seg_dataset(root, num_train=wanted['train'],
                                  num_val=wanted['val'], size=wanted['size'],
                                  seed=args.seed)
    elif args.seg:
        write_seg_shapes_dataset(root, num_train=wanted['train'],
                                 num_val=wanted['val'], size=wanted['size'],
                                 seed=args.seed)
    else:
        write_shape_dataset(
            root, size=wanted['size'], seed=args.seed,
            per_split=dict(train=wanted['train'], val=wanted['val'],
                           test=wanted['test']))
    with open(osp.join(root, SETTINGS_FILE), 'w') as f:
        json.dump(wanted, f, indent=1)
    kind = ('instance shapes' if args.instances else
            'segmentation textures' if args.texture else
            'segmentation shapes' if args.seg else 'shapes')
    print(f'Wrote {kind} dataset to {root} ({describe(wanted)})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
