"""tools/test.py --tta and --show-dir."""
import pickle

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

from dinov3_mm.datasets.synthetic import write_shape_dataset
from dinov3_mm.datasets.synthetic_seg import write_seg_shapes_dataset
from dinov3_mm.engine.tool_options import enable_tta
from dinov3_mm.registry import DATASETS, MODELS
from dinov3_mm.utils.cli import UserError
from dinov3_mm.visualization.sample_drawing import LINE_HEIGHT


def _save_random_model(cfg, path, seed=0):
    init_default_scope('dinov3_mm')
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model).eval()
    torch.save(dict(meta=dict(epoch=1), state_dict=model.state_dict()), path)
    return model


def _test(run_python, repo_root, cfg_path, ckpt, work_dir, *extra):
    proc = run_python(args=[repo_root / 'tools/test.py', cfg_path, ckpt,
                            '--work-dir', work_dir, *extra])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def _load(path):
    with open(path, 'rb') as fh:
        return pickle.load(fh)


def _test_inputs(cfg):
    init_default_scope('dinov3_mm')
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    return [dataset[i] for i in range(len(dataset))]


def test_classifier_tta_and_show_dir(run_python, repo_root, tmp_path,
                                     shrink_config):
    data = write_shape_dataset(str(tmp_path / 'shapes'), num_per_class=2,
                               size=32)
    cfg = shrink_config(
        Config.fromfile(str(repo_root / 'configs/demo/convnext_shapes.py')),
        data, img_size=32)
    cfg_path, ckpt = tmp_path / 'cfg.py', tmp_path / 'epoch_1.pth'
    cfg.dump(str(cfg_path))
    model = _save_random_model(cfg, ckpt)

    _test(run_python, repo_root, cfg_path, ckpt, tmp_path / 'w1', '--out',
          tmp_path / 'plain.pkl')
    proc = _test(run_python, repo_root, cfg_path, ckpt, tmp_path / 'w2',
                 '--out', tmp_path / 'tta.pkl', '--tta', '--show-dir',
                 tmp_path / 'show')
    assert '--tta: ClsTTAModel' in proc.stdout
    plain, tta = _load(tmp_path / 'plain.pkl'), _load(tmp_path / 'tta.pkl')
    assert len(plain) == len(tta) == 6

    items = _test_inputs(cfg)
    with torch.no_grad():
        for item, p, t in zip(items, plain, tta):
            assert item['data_samples'].img_path == p['img_path'] == t[
                'img_path']
            batch = dict(inputs=[item['inputs']],
                         data_samples=[item['data_samples']])
            x = model.data_preprocessor(batch)['inputs']
            straight = model(x).softmax(1)[0]
            flipped = model(x.flip(-1)).softmax(1)[0]
            torch.testing.assert_close(p['pred_score'], straight,
                                       atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(t['pred_score'],
                                       (straight + flipped) / 2,
                                       atol=1e-5, rtol=1e-4)
            assert t['pred_label'].item() == t['pred_score'].argmax().item()
    differences = [(p['pred_score'] - t['pred_score']).abs().max().item()
                   for p, t in zip(plain, tta)]
    assert max(differences) > 1e-4  # TTA changed the predictions

    # one picture per test image, in the dataset's class folders
    pictures = sorted(p.relative_to(tmp_path / 'show').as_posix()
                      for p in (tmp_path / 'show').rglob('*.png'))
    assert len(pictures) == 6
    assert {tuple(p.split('/')[:2]) for p in pictures} == {
        ('test', 'circle'), ('test', 'square'), ('test', 'triangle')}
    with Image.open(tmp_path / 'show' / pictures[0]) as im:
        # 32 px shown at 128 under two caption lines (pred, true)
        assert im.size[1] == 128 + 2 * LINE_HEIGHT + 4
        assert 128 <= im.size[0] <= 512


def test_segmentor_tta_and_show_dir(run_python, repo_root, tmp_path,
                                    tiny_seg_config):
    data = write_seg_shapes_dataset(str(tmp_path / 'seg'), num_train=2,
                                    num_val=3, size=32)
    cfg = tiny_seg_config(data, tmp_path / 'work')
    cfg_path, ckpt = tmp_path / 'cfg.py', tmp_path / 'epoch_1.pth'
    cfg.dump(str(cfg_path))
    model = _save_random_model(cfg, ckpt)
    proc = _test(run_python, repo_root, cfg_path, ckpt, tmp_path / 'w',
                 '--out', tmp_path / 'tta.pkl', '--tta', '--show-dir',
                 tmp_path / 'show')
    assert 'test_cfg.flip=True' in proc.stdout
    tta = _load(tmp_path / 'tta.pkl')
    items = _test_inputs(cfg)
    with torch.no_grad():
        for item, t in zip(items, tta):
            batch = dict(inputs=[item['inputs']],
                         data_samples=[item['data_samples']])
            x = model.data_preprocessor(batch)['inputs']
            straight = model(x)[0]
            flipped = model(x.flip(-1)).flip(-1)[0]
            assert (straight - flipped).abs().max() > 1e-4
            torch.testing.assert_close(t['seg_logits']['data'],
                                       (straight + flipped) / 2,
                                       atol=1e-4, rtol=1e-4)
    pictures = sorted((tmp_path / 'show').rglob('*.png'))
    assert len(pictures) == 3
    with Image.open(pictures[0]) as im:
        # image | ground truth | prediction | errors, 128 px tiles
        assert im.size[0] == 4 * 128 + 3 * 4


def test_tta_refused_for_unknown_model(run_python, repo_root, tmp_path,
                                       tiny_config):
    ckpt = tmp_path / 'any.pth'
    ckpt.write_bytes(b'x')
    proc = run_python(args=[repo_root / 'tools/test.py', tiny_config, ckpt,
                            '--tta', '--work-dir', tmp_path / 'w'],
                      extra_paths=[tmp_path])
    assert proc.returncode == 1
    assert '--tta knows classifiers and segmentors, not ToolProbeModel' in (
        proc.stderr)
    assert 'tta_model' in proc.stderr and 'Traceback' not in proc.stderr


def test_enable_tta_uses_the_configs_tta_model(repo_root):
    cfg = Config.fromfile(str(repo_root / 'configs/demo/convnext_shapes.py'))
    cfg.tta_model = dict(type='ClsTTAModel')
    cfg.tta_pipeline = [dict(type='LoadImage'), dict(type='PackClsInputs')]
    model = cfg.model
    assert 'ClsTTAModel' in enable_tta(cfg, 'cfg.py')
    assert cfg.model.type == 'ClsTTAModel' and cfg.model.module == model
    assert cfg.test_dataloader.dataset.pipeline == [
        dict(type='LoadImage'), dict(type='PackClsInputs')]
    assert 'tta_model' not in cfg and 'tta_pipeline' not in cfg

    cfg = Config.fromfile(str(repo_root / 'configs/demo/convnext_shapes.py'))
    cfg.tta_model = dict(type='ClsTTAModel')
    with pytest.raises(UserError, match='both `tta_model` and'):
        enable_tta(cfg, 'cfg.py')
