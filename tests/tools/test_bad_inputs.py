"""Bad checkpoints through the command-line tools: exit codes and messages.

Each case runs the tool as a user would (a fresh interpreter) and checks how
it ends: a non-zero exit and a message naming the file and the problem, or
a run that works and says what it did.
"""
import pathlib

import pytest
import torch

import dinov3_mm  # noqa: F401  (torch.load of mmengine checkpoints)

REPO = pathlib.Path(__file__).resolve().parents[2]
FORCE_PICKLE = {'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD': '1'}


@pytest.fixture
def payload_checkpoint(tmp_path, models):
    """The classifier checkpoint with an object that creates a file when
    unpickled, standing for any code a pickle can run."""
    marker = tmp_path / 'code_ran'
    state = torch.load(models['cls']['checkpoint'], weights_only=True)
    state['meta']['note'] = _Touch(marker)
    path = tmp_path / 'payload.pth'
    torch.save(state, path)
    return path, marker


class _Touch:

    def __init__(self, path):
        self.path = pathlib.Path(path)

    def __reduce__(self):
        return pathlib.Path.touch, (self.path, )


def _tool(run_python, tool, *args, env=None):
    return run_python(args=[REPO / 'tools' / tool, *args], env=env)


def test_infer_refuses_another_tasks_checkpoint(models, tmp_path,
                                                run_python):
    cls = models['cls']
    proc = _tool(run_python, 'infer.py', cls['config'],
                 models['seg']['checkpoint'], cls['data'],
                 '--out', tmp_path / 'preds.csv')
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert (f"error: {models['seg']['checkpoint']} does not match the model "
            f"of {cls['config']}") in proc.stderr
    assert 'missing (in the model, not in the checkpoint)' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not (tmp_path / 'preds.csv').exists()


def test_deploy_refuses_another_tasks_checkpoint(models, tmp_path,
                                                 run_python):
    proc = _tool(run_python, 'deploy.py', models['cls']['config'],
                 models['seg']['checkpoint'], '--work-dir', tmp_path / 'out')
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert f"{models['seg']['checkpoint']} does not match" in proc.stderr
    assert 'parity passed' not in proc.stdout
    assert not (tmp_path / 'out' / 'model.onnx').exists()


@pytest.mark.parametrize('tool', ['infer.py', 'deploy.py'])
@pytest.mark.parametrize('env', [None, FORCE_PICKLE],
                         ids=['default', 'force-no-weights-only'])
def test_payload_checkpoint_never_runs(models, payload_checkpoint, tmp_path,
                                       run_python, tool, env):
    path, marker = payload_checkpoint
    extra = (['--work-dir', tmp_path / 'out'] if tool == 'deploy.py' else
             [models['cls']['data'], '--out', tmp_path / 'p.csv'])
    proc = _tool(run_python, tool, models['cls']['config'], path, *extra,
                 env=env)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert f'{path} holds Python objects that weights-only loading does ' \
        'not allow' in proc.stderr
    assert not marker.exists()


@pytest.mark.parametrize('content,expected', [
    (b'', 'is empty (0 bytes)'),
    (None, 'is truncated'),
])
def test_empty_or_truncated_checkpoint_is_named(models, tmp_path, run_python,
                                                content, expected):
    path = tmp_path / 'epoch_9.pth'
    if content is None:
        data = pathlib.Path(models['cls']['checkpoint']).read_bytes()
        content = data[:len(data) // 2]
    path.write_bytes(content)
    proc = _tool(run_python, 'infer.py', models['cls']['config'], path,
                 models['cls']['data'], '--out', tmp_path / 'p.csv')
    assert proc.returncode == 1
    assert f'error: {path}' in proc.stderr and expected in proc.stderr


def _train_tiny(run_tool, tiny_config, work_dir, *options):
    run_tool('train.py', tiny_config, '--work-dir', work_dir,
             *(['--cfg-options', *options] if options else []))
    return work_dir / 'epoch_1.pth'


def test_test_tool_refuses_another_models_checkpoint(tiny_config, tmp_path,
                                                     run_tool, run_python):
    trained = _train_tiny(run_tool, tiny_config, tmp_path / 'train')
    state = torch.load(trained, weights_only=True)
    state['state_dict'].update({'linear.weight': torch.zeros(3, 4),
                                'linear.bias': torch.zeros(3)})
    ckpt = tmp_path / 'three_outputs.pth'
    torch.save(state, ckpt)
    proc = run_python(args=[REPO / 'tools' / 'test.py', tiny_config, ckpt,
                            '--work-dir', tmp_path / 'test'],
                      extra_paths=[tmp_path])
    assert proc.returncode == 1
    assert f'error: {ckpt} does not match the model of {tiny_config}' \
        in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert 'linear.weight: checkpoint (3, 4) vs model (2, 4)' in proc.stderr
    assert 'Epoch(test)' not in proc.stdout + proc.stderr


def test_test_tool_partial_load_on_request(tiny_config, tmp_path, run_tool):
    ckpt = _train_tiny(run_tool, tiny_config, tmp_path / 'train')
    state = torch.load(ckpt, weights_only=True)
    state['state_dict']['aux.weight'] = torch.zeros(1)
    torch.save(state, tmp_path / 'extra.pth')
    proc = run_tool('test.py', tiny_config, tmp_path / 'extra.pth',
                    '--work-dir', tmp_path / 'test', '--cfg-options',
                    'load_strict=False')
    log = proc.stdout + proc.stderr
    assert 'Partial load (strict=False)' in log
    assert 'aux.weight' in log and 'mse' in log


def test_resume_with_empty_record_says_what_it_resumes(tiny_config, tmp_path,
                                                        run_tool):
    work_dir = tmp_path / 'work'
    ckpt = _train_tiny(run_tool, tiny_config, work_dir)
    (work_dir / 'last_checkpoint').write_text('')
    (work_dir / 'epoch_2.pth.zz9xk2ab.tmp').write_bytes(b'half a save')
    proc = run_tool('train.py', tiny_config, '--work-dir', work_dir,
                    '--resume', '--cfg-options', 'train_cfg.max_epochs=2')
    log = proc.stdout + proc.stderr
    assert 'last_checkpoint is empty; resuming from the newest checkpoint' \
        in log and str(ckpt) in log
    assert 'epoch_2.pth.zz9xk2ab.tmp, left by an interrupted checkpoint' \
        in log
    assert (work_dir / 'last_checkpoint').read_text() == str(
        work_dir / 'epoch_2.pth')


@pytest.mark.parametrize('env', [None, FORCE_PICKLE],
                         ids=['default', 'force-no-weights-only'])
def test_payload_through_convert_and_merge_tools(payload_checkpoint,
                                                 models, tmp_path, run_python,
                                                 env):
    path, marker = payload_checkpoint
    convert = _tool(run_python, 'convert_checkpoint.py', path,
                    tmp_path / 'out.pth', '--to', 'official', env=env)
    merge = _tool(run_python, 'merge_lora.py',
                  REPO / 'configs/classification/vits16_lora_shapes.py', path,
                  tmp_path / 'merged.pth', env=env)
    for proc in (convert, merge):
        assert proc.returncode == 1, proc.stderr[-2000:]
        assert f'error: {path} holds Python objects that weights-only ' \
            'loading does not allow' in proc.stderr
    assert not marker.exists()
    assert not (tmp_path / 'out.pth').exists()


@pytest.mark.parametrize('name,content', [
    ('zero.png', b''),
    ('truncated.png', None),
    ('text.jpg', b'this is not a JPEG\n'),
])
def test_infer_names_an_unreadable_image(models, tmp_path, run_python, name,
                                         content):
    folder = tmp_path / 'images'
    folder.mkdir()
    good = sorted(pathlib.Path(models['cls']['data']).rglob('*.png'))[0]
    (folder / 'good.png').write_bytes(good.read_bytes())
    if content is None:
        content = good.read_bytes()[:60]
    (folder / name).write_bytes(content)
    proc = _tool(run_python, 'infer.py', models['cls']['config'],
                 models['cls']['checkpoint'], folder,
                 '--out', tmp_path / 'p.csv')
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert f'error: Cannot read image {folder / name}' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not (tmp_path / 'p.csv').exists()


def _seg_training(tmp_path, tiny_seg_config, break_mask):
    from dinov3_mm.datasets.synthetic_seg import write_seg_shapes_dataset
    from PIL import Image
    data = pathlib.Path(write_seg_shapes_dataset(
        str(tmp_path / 'seg'), num_train=4, num_val=2, size=32))
    mask = sorted((data / 'ann_dir' / 'train').glob('*.png'))[1]
    break_mask(mask, Image)
    cfg = tiny_seg_config(str(data), str(tmp_path / 'work'))
    cfg.train_dataloader.dataset.pipeline = [
        t for t in cfg.train_dataloader.dataset.pipeline
        if t['type'] not in ('RandomRescale', 'RandomCropCatRatio')]
    cfg_path = tmp_path / 'seg_cfg.py'
    cfg.dump(str(cfg_path))
    return cfg_path, mask


@pytest.mark.parametrize('fault,expected', [
    ('size', 'is 16x16 (HxW) but image'),
    ('values', 'has values [9] outside the 4 classes'),
])
def test_training_names_a_bad_mask(tmp_path, run_python, tiny_seg_config,
                                   fault, expected):
    import numpy as np

    def break_mask(mask, Image):
        if fault == 'size':
            Image.open(mask).resize((16, 16)).save(mask)
        else:
            values = np.array(Image.open(mask))
            values[:4, :4] = 9
            Image.fromarray(values).save(mask)

    cfg_path, mask = _seg_training(tmp_path, tiny_seg_config, break_mask)
    proc = _tool(run_python, 'train.py', cfg_path)
    assert proc.returncode == 1
    assert str(mask) in proc.stderr and expected in proc.stderr, \
        proc.stderr[-3000:]
