"""write_shape_dataset: layout, determinism, no cross-split duplicates."""
import hashlib

from dinov3_mm.datasets import ImageFolderDataset, write_shape_dataset
from dinov3_mm.datasets.synthetic import SHAPES


def _digests(root):
    return {hashlib.sha1(p.read_bytes()).hexdigest()
            for p in root.rglob('*.png')}


def test_layout_and_determinism(tmp_path):
    root = write_shape_dataset(str(tmp_path / 'a'), num_per_class=2, size=24,
                               per_split=dict(train=4))
    train = ImageFolderDataset(root, split='train')
    assert train.metainfo['classes'] == SHAPES and len(train) == 12
    assert len(ImageFolderDataset(root, split='test')) == 6
    write_shape_dataset(str(tmp_path / 'b'), num_per_class=2, size=24,
                        per_split=dict(train=4))
    assert _digests(tmp_path / 'a') == _digests(tmp_path / 'b')
    assert len(_digests(tmp_path / 'a')) == 24


def test_flat_layout(tmp_path):
    root = write_shape_dataset(str(tmp_path / 'c'), num_per_class=3,
                               size=16, splits=None)
    assert sorted(p.name for p in (tmp_path / 'c').iterdir()) == sorted(
        SHAPES)
    assert len(ImageFolderDataset(root)) == 9
