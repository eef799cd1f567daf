"""Datasets list each real file once and keep annotation paths in the root."""
import importlib.util
import json
import logging
import os
from pathlib import Path

import pytest
from mmengine.logging import MMLogger

from dinov3_mm.datasets import (AnnotationFileDataset, ImageFolderDataset,
                                SegFolderDataset, UnlabeledImageDataset)
from dinov3_mm.datasets.file_listing import FileLister
from dinov3_mm.datasets.image_folder import list_images

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not hasattr(os, 'symlink'),
                                reason='needs symbolic links')


@pytest.fixture
def log():
    """Messages logged through mmengine's current logger during the test."""
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler(level=logging.INFO)
    handler.emit = records.append
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def messages(records, level=logging.WARNING):
    return [r.getMessage() for r in records if r.levelno == level]


def write_csv(path, lines):
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def test_loop_to_parent_lists_each_image_once(tmp_path, write_png, log):
    root = tmp_path / 'data'
    for i in range(3):
        write_png(root / 'site' / f'{i}.png', seed=i)
    write_png(root / 'site' / 'deep' / 'x.png', seed=9)
    os.symlink(root, root / 'site' / 'deep' / 'up')
    dataset = UnlabeledImageDataset(str(root))
    assert len(dataset) == 4
    assert len({dataset.get_data_info(i)['img_path']
                for i in range(4)}) == 4
    warnings = messages(log)
    assert len(warnings) == 1
    assert 'UnlabeledImageDataset: skipped 1 symbolic link(s) looping' \
        in warnings[0]
    assert f"'{root / 'site' / 'deep' / 'up'}' -> '{root}'" in warnings[0]


def test_loop_inside_class_folder_does_not_pull_other_classes(
        tmp_path, make_folder, log):
    root = make_folder(tmp_path / 'data', dict(cat=2, dog=3))
    os.symlink(root, root / 'cat' / 'all')
    dataset = ImageFolderDataset(str(root))
    assert dataset.get_gt_labels().tolist() == [0, 0, 1, 1, 1]
    assert any('skipped 1 symbolic link(s) looping' in m
               for m in messages(log))


def test_list_images_keeps_first_path_of_two_links(tmp_path, write_png,
                                                    log):
    root = tmp_path / 'data'
    real = tmp_path / 'other_disk' / 'scans'
    for i in range(2):
        write_png(real / f'{i}.png', seed=i)
    root.mkdir()
    os.symlink(real, root / 'a_link')
    os.symlink(real, root / 'b_link')
    images, others = list_images(str(root), ('.png', ))
    assert images == [str(root / 'a_link' / '0.png'),
                      str(root / 'a_link' / '1.png')]
    assert others == []
    warning = ' '.join(messages(log))
    assert 'skipped 1 folder(s) already listed' in warning
    assert f"'{root / 'b_link'}' -> '{real}'" in warning
    assert f"(listed as '{root / 'a_link'}')" in warning


def test_file_links_and_hard_links_count_once(tmp_path, write_png, log):
    root = tmp_path / 'data'
    write_png(root / 'a.png')
    os.symlink(root / 'a.png', root / 'b.png')
    os.link(root / 'a.png', root / 'c.png')
    write_png(root / 'd.png', seed=1)
    dataset = UnlabeledImageDataset(str(root), recursive=False)
    assert [dataset.get_data_info(i)['img_path'] for i in range(2)] == [
        str(root / 'a.png'), str(root / 'd.png')]
    warning = ' '.join(messages(log))
    assert 'skipped 2 file(s) reached a second time' in warning
    assert f"'{root / 'b.png'}' (same file as '{root / 'a.png'}')" in warning


def test_listing_order_is_unchanged(tmp_path, write_png):
    root = tmp_path / 'data'
    for name in ('z.png', 'a.png', 'sub/b.png', 'sub/a/c.png'):
        write_png(root / name)
    lister = FileLister('test')
    images, _ = lister.list(str(root), ('.png', ))
    assert [os.path.relpath(p, root) for p in images] == [
        'a.png', 'z.png', 'sub/b.png', 'sub/a/c.png']


def test_seg_folder_loop_listed_once(tmp_path, write_png, log):
    root = tmp_path / 'seg'
    for stem in ('0', '1'):
        write_png(root / 'img' / f'{stem}.png')
        write_png(root / 'ann' / f'{stem}.png', value=0)
    os.symlink(root, root / 'img' / 'back')
    dataset = SegFolderDataset(str(root), img_dir='img', ann_dir='ann',
                               classes=['bg', 'fg'])
    assert len(dataset) == 2
    assert any('SegFolderDataset: skipped 1 symbolic link(s)' in m
               for m in messages(log))


@pytest.fixture
def outside(tmp_path, write_png, monkeypatch):
    """A root with one image, and images outside it (one under ``~``)."""
    root = tmp_path / 'root'
    write_png(root / 'in.png')
    write_png(tmp_path / 'out.png')
    home = tmp_path / 'home'
    write_png(home / 'h.png')
    monkeypatch.setenv('HOME', str(home))
    return root


def test_csv_paths_outside_root_are_refused(outside, tmp_path):
    ann = write_csv(outside / 'ann.csv', [
        'path,label', 'in.png,a', '../out.png,b', f'{tmp_path}/out.png,a',
        '~/h.png,b'])
    with pytest.raises(ValueError) as info:
        AnnotationFileDataset(ann)
    message = str(info.value)
    assert message.startswith('AnnotationFileDataset: 3 path(s) in')
    assert "ann.csv, line 3: '../out.png'" in message
    assert f"ann.csv, line 4: '{tmp_path}/out.png'" in message
    assert "ann.csv, line 5: '~/h.png'" in message
    assert 'allow_paths_outside_root=True' in message


def test_json_path_outside_data_root_names_the_index(outside, tmp_path):
    ann = tmp_path / 'ann.json'
    ann.write_text(json.dumps([dict(path='in.png', label='a'),
                               dict(path='sub/../../out.png', label='b')]))
    with pytest.raises(ValueError, match=r"ann.json, sample 1: "
                       r"'sub/\.\./\.\./out.png'"):
        AnnotationFileDataset(str(ann), data_root=str(outside))


def test_paths_outside_root_allowed_with_switch(outside, tmp_path, log):
    ann = write_csv(outside / 'ann.csv', [
        'path,label', 'in.png,a', '../out.png,b', '~/h.png,b'])
    dataset = AnnotationFileDataset(ann, allow_paths_outside_root=True)
    assert len(dataset) == 3
    assert dataset.get_data_info(2)['img_path'] == str(
        tmp_path / 'home' / 'h.png')
    info = messages(log, logging.INFO)
    assert any('2 of 3 path(s)' in m and 'outside the root' in m
               for m in info)


def test_symlink_inside_root_pointing_out_is_accepted(outside, tmp_path):
    os.symlink(tmp_path / 'out.png', outside / 'linked.png')
    ann = write_csv(outside / 'ann.csv', ['path,label', 'in.png,a',
                                          'linked.png,b'])
    assert len(AnnotationFileDataset(ann)) == 2


def test_same_path_in_two_splits_is_an_error(tmp_path, write_png):
    for i in range(3):
        write_png(tmp_path / f'{i}.png', seed=i)
    ann = write_csv(tmp_path / 'ann.csv', [
        'path,label,split', '0.png,a,train', '1.png,b,train',
        '2.png,a,test', './0.png,a,test'])
    with pytest.raises(ValueError) as info:
        AnnotationFileDataset(ann, split='train')
    message = str(info.value)
    assert '1 path(s)' in message and 'are in two splits' in message
    assert (f"'0.png' in train ({ann}, line 2) and './0.png' in test "
            f"({ann}, line 5)") in message
    assert 'fix the split column or delete one of the rows' in message


def test_same_file_through_link_in_two_splits_is_reported(tmp_path,
                                                          write_png, log):
    for i in range(3):
        write_png(tmp_path / f'{i}.png', seed=i)
    os.symlink(tmp_path / '0.png', tmp_path / 'copy.png')
    ann = write_csv(tmp_path / 'ann.csv', [
        'path,label,split', '0.png,a,train', '1.png,b,train',
        '2.png,a,test', 'copy.png,a,val'])
    dataset = AnnotationFileDataset(ann, split='train')
    assert len(dataset) == 2
    warning = ' '.join(messages(log))
    assert 'AnnotationFileDataset: 1 file(s) of' in warning
    assert 'in more than one split' in warning
    assert f"'{tmp_path / '0.png'}' in train" in warning
    assert f"'{tmp_path / 'copy.png'}' in val" in warning


def test_image_folder_file_in_train_and_test_is_reported(
        tmp_path, make_folder, log):
    root = make_folder(tmp_path / 'data', dict(a=2, b=2), 'train')
    make_folder(root, dict(a=1, b=1), 'test', start_seed=50)
    os.link(root / 'train' / 'a' / '000.png', root / 'test' / 'a' / 'x.png')
    os.symlink(root / 'train' / 'b' / '001.png',
               root / 'test' / 'b' / 'y.png')
    dataset = ImageFolderDataset(str(root), split='test')
    assert len(dataset) == 4
    warning = ' '.join(messages(log))
    assert 'ImageFolderDataset: 2 file(s) of' in warning
    assert (f"'{root / 'train' / 'a' / '000.png'}' in train, "
            f"'{root / 'test' / 'a' / 'x.png'}' in test") in warning


@pytest.mark.parametrize('build', [
    lambda root: ImageFolderDataset(root),
    lambda root: UnlabeledImageDataset(root),
    lambda root: SegFolderDataset(root, classes=['bg', 'fg']),
    lambda root: AnnotationFileDataset('ann.csv', data_root=root),
], ids=['ImageFolderDataset', 'UnlabeledImageDataset', 'SegFolderDataset',
        'AnnotationFileDataset'])
def test_data_root_none_or_missing(build, request, tmp_path):
    name = request.node.callspec.id
    with pytest.raises(ValueError) as info:
        build(None)
    assert str(info.value).startswith(
        f'{name}: data_root is None; set data_root in the config to the '
        'dataset folder, e.g. --cfg-options '
        'train_dataloader.dataset.data_root=')
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError) as info:
        build(missing)
    assert str(info.value).startswith(
        f"{name}: data_root '{missing}' does not exist")


@pytest.mark.parametrize('cls', [ImageFolderDataset, UnlabeledImageDataset])
def test_data_root_empty_is_refused_where_required(cls):
    with pytest.raises(ValueError, match=f'{cls.__name__}: data_root is '
                       'empty; set data_root'):
        cls('')


def test_volume_slice_dataset_data_root(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / 'projects' / 'medical'))
    datasets = pytest.importorskip('dinov3_mm_medical.datasets')
    build = datasets.VolumeSliceDataset
    with pytest.raises(ValueError, match='VolumeSliceDataset: data_root is '
                       'None; set data_root in the config'):
        build(data_root=None, classes=['bg', 'fg'])
    with pytest.raises(FileNotFoundError, match="VolumeSliceDataset: "
                       "data_root '.*nowhere' does not exist"):
        build(data_root=str(tmp_path / 'nowhere'), classes=['bg', 'fg'])


def _validate_tool():
    spec = importlib.util.spec_from_file_location(
        'validate_dataset_tool', REPO / 'tools' / 'validate_dataset.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_validate_tool_refuses_outside_paths(outside, capsys):
    validate_dataset = _validate_tool()
    ann = write_csv(outside / 'ann.csv', ['path,label', 'in.png,a',
                                          '../out.png,b'])
    assert validate_dataset.main([ann]) == 2
    err = capsys.readouterr().err
    assert "ann.csv, line 3: '../out.png'" in err
    assert validate_dataset.main(
        [ann, '--allow-paths-outside-root', '--fail-on', 'none']) == 0
    assert 'out.png' not in capsys.readouterr().err
