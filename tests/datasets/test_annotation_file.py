"""AnnotationFileDataset: CSV and JSON, names and indices, errors."""
import json

import pytest

from dinov3_mm.datasets import AnnotationFileDataset
from dinov3_mm.registry import DATASETS


@pytest.fixture
def images(tmp_path, write_png):
    for i in range(12):
        write_png(tmp_path / 'img' / f'{i}.png', seed=i)
    return tmp_path


def write_csv(path, lines):
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def test_csv_names_with_split(images):
    rows = ['path,label,split'] + [
        f'img/{i}.png,{"cat" if i % 2 else "dog"},'
        f'{"train" if i < 8 else "val"}' for i in range(12)]
    ann = write_csv(images / 'ann.csv', rows)
    train = AnnotationFileDataset(ann, split='train')
    assert train.metainfo['classes'] == ('cat', 'dog')
    assert len(train) == 8
    info = train.get_data_info(1)
    assert info['img_path'] == str(images / 'img' / '1.png')
    assert info['gt_label'] == 0
    assert len(AnnotationFileDataset(ann, split='val')) == 4
    assert len(AnnotationFileDataset(ann)) == 12


def test_csv_indices_and_data_root(images, tmp_path):
    ann = write_csv(tmp_path / 'elsewhere.csv',
                    ['path,label'] + [f'{i}.png,{i % 3}' for i in range(12)])
    dataset = AnnotationFileDataset(ann, data_root=str(images / 'img'))
    assert dataset.metainfo['classes'] == ('0', '1', '2')
    assert dataset.get_gt_labels().tolist() == [i % 3 for i in range(12)]


def test_csv_indices_with_given_classes(images):
    ann = write_csv(images / 'a.csv', ['path,label', 'img/0.png,1',
                                       'img/1.png,cat'])
    dataset = AnnotationFileDataset(ann, classes=['cat', 'dog'])
    assert dataset.get_gt_labels().tolist() == [1, 0]


def test_csv_multi_label(images):
    ann = write_csv(images / 'm.csv', [
        'path,labels', 'img/0.png,a;b', 'img/1.png,c|a', 'img/2.png,',
        'img/3.png,b'])
    dataset = AnnotationFileDataset(ann, multi_label=True)
    assert dataset.metainfo['classes'] == ('a', 'b', 'c')
    assert [dataset.get_data_info(i)['gt_label'] for i in range(4)] == [
        [0, 1], [0, 2], [], [1]]
    assert dataset.get_cat_ids(1) == [0, 2]


def test_csv_automatic_split_is_stratified(images):
    ann = write_csv(images / 's.csv', ['path,label'] + [
        f'img/{i}.png,{"a" if i < 6 else "b"}' for i in range(12)])
    kwargs = dict(split_ratios=(0.5, 0.5), split_seed=0)
    train = AnnotationFileDataset(ann, split='train', **kwargs)
    val = AnnotationFileDataset(ann, split='val', **kwargs)
    assert sorted(train.get_gt_labels().tolist()) == [0, 0, 0, 1, 1, 1]
    assert sorted(val.get_gt_labels().tolist()) == [0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="split 'test' of .*s.csv"):
        AnnotationFileDataset(ann, split='test', **kwargs)


@pytest.mark.parametrize('layout', ['list', 'dict'])
def test_json_single_and_multi(images, layout):
    samples = [dict(path=f'img/{i}.png', label=['x', 'y'][i % 2],
                    split='validation' if i > 9 else 'train')
               for i in range(12)]
    content = (samples if layout == 'list' else
               dict(classes=['y', 'x'], samples=samples))
    ann = images / 'a.json'
    ann.write_text(json.dumps(content))
    dataset = AnnotationFileDataset(str(ann), split='val')
    assert len(dataset) == 2
    expected = ('x', 'y') if layout == 'list' else ('y', 'x')
    assert dataset.metainfo['classes'] == expected
    multi = [dict(path=f'img/{i}.png', labels=[0, 2]) for i in range(3)]
    ann.write_text(json.dumps(multi))
    dataset = AnnotationFileDataset(str(ann), multi_label=True)
    assert dataset.metainfo['classes'] == ('0', '1', '2')
    assert dataset.get_data_info(0)['gt_label'] == [0, 2]


def test_unknown_label_names_file_and_line(images):
    ann = write_csv(images / 'u.csv', ['path,label', 'img/0.png,cat',
                                       'img/1.png,cow'])
    with pytest.raises(ValueError) as info:
        AnnotationFileDataset(ann, classes=['cat', 'dog'])
    message = str(info.value)
    assert 'u.csv, line 3' in message and "'cow'" in message
    assert 'add the class' in message


def test_index_out_of_range(images):
    ann = write_csv(images / 'i.csv', ['path,label', 'img/0.png,5'])
    with pytest.raises(ValueError, match='i.csv, line 2'):
        AnnotationFileDataset(ann, classes=['a', 'b'])


def test_missing_file_names_it(images):
    ann = write_csv(images / 'f.csv', ['path,label', 'img/0.png,a',
                                       'img/404.png,b'])
    with pytest.raises(FileNotFoundError) as info:
        AnnotationFileDataset(ann)
    assert '404.png' in str(info.value) and 'line 3' in str(info.value)
    assert len(AnnotationFileDataset(ann, check_files=False)) == 2


def test_row_missing_column(images):
    ann = write_csv(images / 'c.csv', ['path,label', 'img/0.png,a',
                                       'img/1.png'])
    with pytest.raises(ValueError, match=r'c.csv, line 3.*lacks column'):
        AnnotationFileDataset(ann)


def test_header_without_label(images):
    ann = write_csv(images / 'h.csv', ['path,klass', 'img/0.png,a'])
    with pytest.raises(ValueError, match='h.csv, line 1'):
        AnnotationFileDataset(ann)


def test_single_label_with_several(images):
    ann = write_csv(images / 's.csv', ['path,label', 'img/0.png,a;b'])
    with pytest.raises(ValueError, match='multi_label=True'):
        AnnotationFileDataset(ann)


def test_bad_split_value_and_json_key(images):
    ann = write_csv(images / 'b.csv', ['path,label,split',
                                       'img/0.png,a,dev'])
    with pytest.raises(ValueError, match=r"b.csv, line 2.*'dev'"):
        AnnotationFileDataset(ann)
    bad = images / 'b.json'
    bad.write_text(json.dumps([dict(path='img/0.png', label='a'),
                               dict(file_name='img/1.png', label='a')]))
    with pytest.raises(ValueError, match='b.json, sample 1'):
        AnnotationFileDataset(str(bad))


def test_missing_ann_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothing.csv'):
        AnnotationFileDataset(str(tmp_path / 'nothing.csv'))


def test_registry_build_with_pipeline(images):
    ann = write_csv(images / 'p.csv', ['path,label', 'img/0.png,a',
                                       'img/1.png,b'])
    dataset = DATASETS.build(dict(
        type='AnnotationFileDataset', ann_file=ann,
        pipeline=[dict(type='LoadImage'), dict(type='PackClsInputs')]))
    out = dataset[1]
    assert out['inputs'].shape == (3, 12, 16)
    assert out['data_samples'].gt_label.tolist() == [1]
