"""tools/train.py stops on a wrong config with one clean error line."""
import pytest

MODEL = """
default_scope = 'dinov3_mm'
model = dict(type='DINOv3Classifier',
             backbone=dict(type='DINOv3ViT', arch='small'))
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1))
"""


@pytest.fixture
def train(run_python, repo_root, tmp_path):
    """Run tools/train.py on a config text; returns the completed process."""

    def run(config_text, *args):
        config = tmp_path / 'bad.py'
        config.write_text(config_text)
        return run_python(args=[
            repo_root / 'tools' / 'train.py', config, '--work-dir',
            tmp_path / 'work', *args
        ])

    return run


def _assert_clean_error(proc, *expected):
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    for text in expected:
        assert text in proc.stderr


def test_misspelt_top_level_key(train):
    proc = train(MODEL + 'defualt_hooks = dict()\n')
    _assert_clean_error(
        proc, "error: ", "bad.py: unknown top-level key 'defualt_hooks'; "
        "did you mean 'default_hooks'?")


def test_unknown_backbone_argument(train):
    proc = train(MODEL, '--cfg-options', 'model.backbone.drop_path=0.1')
    _assert_clean_error(
        proc, "model.backbone (DINOv3ViT): unknown argument 'drop_path'; "
        'valid arguments: drop_path_rate')


def test_learning_rate_that_is_not_a_number(train):
    proc = train(MODEL, '--cfg-options', 'optim_wrapper.optimizer.lr=fast')
    _assert_clean_error(
        proc, "optim_wrapper.optimizer.lr (SGD): 'fast' is not a number")


def test_malformed_cfg_option(train):
    proc = train(MODEL, '--cfg-options', 'train_cfg.max_epochs')
    assert proc.returncode == 2
    assert proc.stderr.startswith('usage: train.py')
    assert ("argument --cfg-options: 'train_cfg.max_epochs' has no \"=\"; "
            'write each item as KEY=VALUE') in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_data_root_not_set(train):
    proc = train(MODEL + """
train_dataloader = dict(
    batch_size=2, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='ImageFolderDataset', data_root=None, pipeline=[]))
train_cfg = dict(by_epoch=True, max_epochs=1)
""")
    _assert_clean_error(
        proc, 'train_dataloader.dataset (ImageFolderDataset): data_root is '
        'not set; set it in the config or with --cfg-options '
        'train_dataloader.dataset.data_root=PATH')
