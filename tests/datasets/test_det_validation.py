"""Detection dataset checks and the validate_dataset tool on them."""
import importlib.util
import json
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from dinov3_mm.datasets import validate_det_dataset

TOOL = Path(__file__).resolve().parents[2] / 'tools' / 'validate_dataset.py'
W, H = 40, 40


def load_tool():
    spec = importlib.util.spec_from_file_location('validate_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def coco_root(tmp_path, write_png):
    """``<root>/train/*.png`` + ``annotations/instances_train.json`` with one
    problem of each kind."""
    root = tmp_path / 'coco'
    for i in range(3):
        write_png(root / 'train' / f'{i}.png', size=(W, H), seed=i)
    write_png(root / 'train' / 'copy.png', size=(W, H), seed=0)
    mask = np.zeros((H, W), np.uint8)
    mask[30:38, 30:38] = 1  # far from its box
    rle = mask_utils.encode(np.asfortranarray(mask))
    good = [[5, 5, 15, 5, 15, 15, 5, 15]]
    anns = [
        dict(id=1, image_id=1, category_id=1, bbox=[5, 5, 10, 10],
             segmentation=good),
        dict(id=2, image_id=1, category_id=1, bbox=[30, 5, 20, 10]),
        dict(id=3, image_id=1, category_id=1, bbox=[5, 5, 0, 10]),
        dict(id=4, image_id=1, category_id=9, bbox=[5, 5, 10, 10]),
        dict(id=5, image_id=1, category_id=2, bbox=[1, 1, 5, 5],
             segmentation=[[1, 1, 5, 5]]),
        dict(id=6, image_id=1, category_id=2, bbox=[1, 1, 5, 5],
             segmentation=dict(size=[10, 10], counts='abc')),
        dict(id=7, image_id=1, category_id=2, bbox=[2, 2, 8, 8],
             segmentation=dict(size=[H, W],
                               counts=rle['counts'].decode())),
        dict(id=8, image_id=1, category_id=1, bbox=[5, 5, 10, 10],
             segmentation=good),
        dict(id=9, image_id=42, category_id=1, bbox=[5, 5, 10, 10]),
        dict(id=10, image_id=4, category_id=1, bbox=[5, 5, 10, 10]),
    ]
    images = [dict(id=1, file_name='0.png', height=H, width=W),
              dict(id=2, file_name='1.png', height=H, width=W),
              dict(id=3, file_name='missing.png', height=H, width=W),
              dict(id=4, file_name='copy.png', height=H, width=W),
              dict(id=4, file_name='2.png', height=H, width=W)]
    (root / 'annotations').mkdir()
    (root / 'annotations' / 'instances_train.json').write_text(json.dumps(
        dict(images=images, annotations=anns,
             categories=[dict(id=1, name='a'), dict(id=2, name='b')])))
    return root


def test_coco_checks_name_file_and_annotation(tmp_path, write_png):
    root = coco_root(tmp_path, write_png)
    report = validate_det_dataset(str(root))
    issues = report.issues
    ann_file = str(root / 'annotations' / 'instances_train.json')

    def ids(check):
        return [w for w, _ in issues[check]]

    assert f'{ann_file} annotation id 2 (image id 1, 0.png)' in ids(
        'box_outside')
    assert any('annotation id 3 ' in w for w in ids('degenerate_boxes'))
    assert any('annotation id 4 ' in w for w in ids('unknown_categories'))
    assert any('annotation id 5 ' in w for w in ids('bad_polygons'))
    assert any('annotation id 6 ' in w for w in ids('bad_rle'))
    assert any('annotation id 7 ' in w for w in ids('mask_box_mismatch'))
    assert any('annotation id 8 ' in w and 'annotation id 1' in d
               for w, d in issues['duplicate_annotations'])
    assert any('annotation id 9' in w for w in ids('orphan_annotations'))
    assert any('missing.png' in d for _, d in issues['missing_images'])
    assert any('image id 4' in w for w in ids('duplicate_image_ids'))
    assert any(w.endswith('1.png') for w in ids('no_annotations'))
    assert any(w.endswith('0.png') and 'copy.png' in d
               for w, d in issues['duplicates_within'])
    assert report.split_stats['train']['images'] == 3
    assert not report.passed
    assert {'box_outside', 'missing_images', 'bad_rle'} <= set(
        report.failed_rules)
    assert 'no_annotations' not in report.failed_rules
    text = report.render()
    assert 'detection, coco' in text and '[FAIL] box_outside' in text


def test_yolo_checks_name_file_and_line(tmp_path, write_png):
    root = tmp_path / 'yolo'
    for i in range(2):
        write_png(root / 'images' / f'{i}.png', size=(W, H), seed=i)
    (root / 'labels').mkdir()
    (root / 'labels' / '0.txt').write_text(
        '0 0.5 0.5 0.2 0.2\n0 0.5 0.5\n1 1.2 0.5 0.1 0.1\n5 0.5 0.5 0.1 0.1\n'
        '0 0.5 0.5 0.2 0.2\n')
    (root / 'labels' / 'orphan.txt').write_text('0 0.5 0.5 0.1 0.1\n')
    (root / 'data.yaml').write_text('names: [a, b]\n')
    report = validate_det_dataset(str(root))
    label = str(root / 'labels' / '0.txt')
    assert report.format == 'yolo'
    assert report.issues['bad_lines'][0][0] == f'{label}, line 2'
    assert report.issues['box_outside'][0][0] == f'{label}, line 3'
    assert report.issues['unknown_categories'][0][0] == f'{label}, line 4'
    assert report.issues['duplicate_annotations'][0][0] == f'{label}, line 5'
    assert report.issues['orphan_annotations'][0][0].endswith('orphan.txt')
    assert report.counts['all'] == dict(a=2, b=0)
    assert 'empty_classes' in report.issues


def test_tool_recognises_detection_sources(tmp_path, write_png, capsys):
    from dinov3_mm.datasets import write_instance_shapes_dataset
    root = write_instance_shapes_dataset(
        str(tmp_path / 'inst'), num_train=4, num_val=2, num_test=0, size=64,
        max_objects=3)
    tool = load_tool()
    out_json = tmp_path / 'report.json'
    assert tool.main([root, '--json', str(out_json)]) == 0
    assert 'detection, coco' in capsys.readouterr().out
    data = json.loads(out_json.read_text())
    assert data['kind'] == 'detection' and data['passed']
    assert list(data['split_stats']) == ['train', 'val', 'test']
    bad = coco_root(tmp_path, write_png)
    ann = str(bad / 'annotations' / 'instances_train.json')
    assert tool.main([ann, '--img-dir', str(bad / 'train')]) == 1
    assert tool.main([str(bad), '--reduce-zero-label']) == 2
