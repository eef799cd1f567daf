"""ImageFolderDataset: both layouts, automatic split, errors."""
import pytest

from dinov3_mm.datasets import ImageFolderDataset
from dinov3_mm.registry import DATASETS


def test_layout_a_splits(folder_a):
    train = ImageFolderDataset(str(folder_a), split='train')
    assert train.metainfo['classes'] == ('a', 'b')
    assert len(train) == 7
    assert sorted(train.get_gt_labels().tolist()) == [0] * 4 + [1] * 3
    info = train.get_data_info(0)
    assert info['img_path'].endswith('train/a/000.png')
    assert info['gt_label'] == 0 and info['split'] == 'train'
    assert len(ImageFolderDataset(str(folder_a), split='val')) == 4
    everything = ImageFolderDataset(str(folder_a))
    assert len(everything) == 13
    assert {everything.get_data_info(i)['split']
            for i in range(13)} == {'train', 'val', 'test'}


def test_layout_a_union_of_classes_keeps_indices(tmp_path, make_folder):
    root = tmp_path / 'd'
    make_folder(root, dict(a=2, b=2, c=2), 'train')
    make_folder(root, dict(a=1, c=1), 'val', 50)
    val = ImageFolderDataset(str(root), split='val')
    assert val.metainfo['classes'] == ('a', 'b', 'c')
    assert sorted(val.get_gt_labels().tolist()) == [0, 2]


def test_layout_a_missing_split_folder(tmp_path, make_folder):
    make_folder(tmp_path / 'd', dict(a=2), 'train')
    with pytest.raises(FileNotFoundError, match='val'):
        ImageFolderDataset(str(tmp_path / 'd'), split='val')


def test_layout_b_stratified_split(folder_b):
    parts = {s: ImageFolderDataset(str(folder_b), split=s,
                                   split_ratios=(0.6, 0.2, 0.2),
                                   split_seed=1)
             for s in ('train', 'val', 'test')}
    paths = {s: {d.get_data_info(i)['img_path'] for i in range(len(d))}
             for s, d in parts.items()}
    assert sum(map(len, paths.values())) == 60
    assert not paths['train'] & paths['val']
    assert not paths['train'] & paths['test']
    assert not paths['val'] & paths['test']
    for dataset in parts.values():
        assert set(dataset.get_gt_labels().tolist()) == {0, 1, 2}
    labels = sorted(parts['train'].get_gt_labels().tolist())
    assert labels.count(0) == 6 and labels.count(2) == 18
    again = ImageFolderDataset(str(folder_b), split='train',
                               split_ratios=(0.6, 0.2, 0.2), split_seed=1)
    assert paths['train'] == {again.get_data_info(i)['img_path']
                              for i in range(len(again))}
    other = ImageFolderDataset(str(folder_b), split='train',
                               split_ratios=(0.6, 0.2, 0.2), split_seed=2)
    assert paths['train'] != {other.get_data_info(i)['img_path']
                              for i in range(len(other))}


def test_layout_b_without_split_keeps_all(folder_b):
    dataset = ImageFolderDataset(str(folder_b))
    assert len(dataset) == 60 and dataset.metainfo['classes'] == ('a', 'b',
                                                                  'c')


def test_given_classes_order_and_cat_ids(folder_b):
    dataset = ImageFolderDataset(str(folder_b), classes=['c', 'b', 'a'])
    assert dataset.metainfo['classes'] == ('c', 'b', 'a')
    first = dataset.get_data_info(0)
    assert first['img_path'].split('/')[-2] == 'a' and first['gt_label'] == 2
    assert dataset.get_cat_ids(0) == [2]


def test_classes_from_text_file(folder_b, tmp_path):
    names = tmp_path / 'classes.txt'
    names.write_text('a\nb\nc\n')
    dataset = ImageFolderDataset(str(folder_b), classes=str(names))
    assert dataset.metainfo['classes'] == ('a', 'b', 'c')


def test_folder_not_in_classes(folder_b):
    with pytest.raises(ValueError, match=r"\['c'\].*add them to classes"):
        ImageFolderDataset(str(folder_b), classes=['a', 'b'])


def test_class_without_folder(folder_b):
    with pytest.raises(FileNotFoundError, match='no folder for class'):
        ImageFolderDataset(str(folder_b), classes=['a', 'b', 'c', 'd'])


def test_empty_class_folder_raises_naming_it(folder_b):
    (folder_b / 'empty').mkdir()
    with pytest.raises(ValueError) as info:
        ImageFolderDataset(str(folder_b))
    assert str(folder_b / 'empty') in str(info.value)
    assert 'skip_empty_classes=True' in str(info.value)


def test_empty_class_folder_skipped_with_warning(folder_b, monkeypatch):
    (folder_b / 'empty').mkdir()
    (folder_b / 'empty' / 'notes.txt').write_text('not an image')
    logged = []
    monkeypatch.setattr('dinov3_mm.datasets.image_folder.print_log',
                        lambda msg, **kwargs: logged.append(msg))
    dataset = ImageFolderDataset(str(folder_b), skip_empty_classes=True)
    assert dataset.metainfo['classes'] == ('a', 'b', 'c')
    assert dataset.empty_class_folders == [str(folder_b / 'empty')]
    text = '\n'.join(logged)
    assert 'skipped 1 empty class folder' in text
    assert 'ignored 1 file' in text


def test_missing_root_and_no_images(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        ImageFolderDataset(str(tmp_path / 'nowhere'))
    (tmp_path / 'x').mkdir()
    with pytest.raises(ValueError, match='no image'):
        ImageFolderDataset(str(tmp_path / 'x'))


def test_nested_and_uppercase_extensions(tmp_path, write_png):
    write_png(tmp_path / 'd' / 'a' / 'sub' / 'X.PNG')
    write_png(tmp_path / 'd' / 'b' / 'y.png', seed=1)
    dataset = ImageFolderDataset(str(tmp_path / 'd'))
    assert len(dataset) == 2


def test_bad_split_name(folder_b):
    with pytest.raises(ValueError, match='split'):
        ImageFolderDataset(str(folder_b), split='training')


def test_builds_from_registry_with_pipeline(folder_a):
    dataset = DATASETS.build(
        dict(type='ImageFolderDataset', data_root=str(folder_a),
             split='train',
             pipeline=[dict(type='LoadImage'),
                       dict(type='ResizeKeepRatioPad', size=20),
                       dict(type='PackClsInputs')]))
    out = dataset[0]
    assert out['inputs'].shape == (3, 20, 20)
    assert out['inputs'].dtype.is_floating_point is False
    assert out['data_samples'].gt_label.tolist() == [0]
    assert out['data_samples'].img_path.endswith('.png')
