"""tools/misc/browse_dataset.py and the pictures of packed samples."""
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData
from PIL import Image

from dinov3_mm.datasets.synthetic import write_shape_dataset
from dinov3_mm.datasets.synthetic_seg import write_seg_shapes_dataset
from dinov3_mm.structures import DataSample
from dinov3_mm.visualization.packed_samples import (draw_packed_sample,
                                                    inputs_to_image)
from dinov3_mm.visualization.sample_drawing import GAP, LINE_HEIGHT


def _browse(run_python, repo_root, cfg_path, out, *extra):
    return run_python(args=[
        repo_root / 'tools/misc/browse_dataset.py', cfg_path, '--output-dir',
        out, *extra
    ])


def test_browse_classification(run_python, repo_root, tmp_path,
                               shrink_config):
    data = write_shape_dataset(str(tmp_path / 'shapes'), num_per_class=2,
                               size=32)
    cfg = shrink_config(
        Config.fromfile(str(repo_root / 'configs/demo/convnext_shapes.py')),
        data, img_size=32)
    cfg_path = tmp_path / 'cfg.py'
    cfg.dump(str(cfg_path))
    out = tmp_path / 'browse'
    proc = _browse(run_python, repo_root, cfg_path, out, '--phase', 'test',
                   '--max-samples', '3')
    assert proc.returncode == 0, proc.stderr
    assert 'Saved 3 test samples' in proc.stdout
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == 3 and files[0].startswith('00000_')
    with Image.open(out / files[0]) as im:
        # 32 px enlarged to 128, one caption line above
        assert im.size[1] == 128 + LINE_HEIGHT + 4 and im.size[0] >= 128


def test_browse_segmentation_and_bad_phase(run_python, repo_root, tmp_path,
                                           tiny_seg_config):
    data = write_seg_shapes_dataset(str(tmp_path / 'seg'), num_train=4,
                                    num_val=2, size=32)
    cfg = tiny_seg_config(data, tmp_path / 'work')
    cfg_path = tmp_path / 'cfg.py'
    cfg.dump(str(cfg_path))
    out = tmp_path / 'browse'
    proc = _browse(run_python, repo_root, cfg_path, out, '--max-samples', '0')
    assert proc.returncode == 0, proc.stderr
    assert 'Saved 4 train samples' in proc.stdout
    pictures = sorted(out.iterdir())
    assert len(pictures) == 4
    with Image.open(pictures[0]) as im:
        width, height = im.size
    assert width == 2 * 128 + GAP  # image | mask overlay
    assert height > LINE_HEIGHT + 128  # title row, tiles, legend

    for key in ('test_dataloader', 'test_evaluator', 'test_cfg'):
        cfg.pop(key, None)
    cfg.dump(str(cfg_path))
    proc = _browse(run_python, repo_root, cfg_path, tmp_path / 'x',
                   '--phase', 'test')
    assert proc.returncode == 1
    assert 'no test_dataloader' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_inputs_to_image_undoes_normalisation():
    rgb = np.random.default_rng(0).integers(0, 256, (3, 4, 5))
    mean, std = np.array([120., 110., 100.]), np.array([60., 50., 40.])
    packed = torch.from_numpy((rgb - mean[:, None, None]) /
                              std[:, None, None])
    image = inputs_to_image(packed, (mean, std, None))
    assert image.dtype == np.uint8 and image.shape == (4, 5, 3)
    np.testing.assert_array_equal(image, np.transpose(rgb, (1, 2, 0)))
    # uint8 inputs without normalisation are shown as they are
    np.testing.assert_array_equal(
        inputs_to_image(torch.from_numpy(rgb.astype(np.uint8))),
        np.transpose(rgb, (1, 2, 0)))


def test_draw_packed_detection_and_unknown_samples():
    sample = DataSample()
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[4., 4., 20., 20.]]), labels=torch.tensor([1]))
    inputs = torch.zeros(3, 32, 32, dtype=torch.uint8)
    picture = draw_packed_sample(inputs, sample, classes=('a', 'b'))
    assert picture.shape == (32, 32, 3)
    assert picture[4, 12].any() and not picture[12, 12].any()  # box edge

    with pytest.raises(ValueError, match='gt_sem_seg'):
        draw_packed_sample(inputs, DataSample())


def test_caption_fits_the_longest_line():
    from dinov3_mm.visualization.sample_drawing import caption_image
    image = np.zeros((32, 32, 3), np.uint8)
    short = caption_image(image, ['ok'])
    assert short.shape == (LINE_HEIGHT + 4 + 128, 128, 3)
    long = caption_image(image, ['pred: triangle (0.97), square (0.88)'])
    assert 128 < long.shape[1] <= 512
    assert (long[LINE_HEIGHT + 4:, 128:] == 255).all()  # white beside
