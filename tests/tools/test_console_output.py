"""tools/train.py and tools/test.py keep the environment dump, the config
and the hook order in the log file; --verbose prints them too."""
import glob

import torch

SETUP_TEXTS = ('System environment:', 'Runtime environment:', 'Config:',
               'Hooks will be executed in the following order')


def _log_text(work_dir):
    (path, ) = glob.glob(str(work_dir / '*' / '*.log'))
    with open(path) as fh:
        return fh.read()


def test_train_and_test_consoles_are_calm(run_tool, tiny_config, tmp_path):
    work_dir = tmp_path / 'work'
    proc = run_tool('train.py', str(tiny_config), '--work-dir', str(work_dir))
    console = proc.stdout + proc.stderr
    for text in SETUP_TEXTS + ('GPU number', ):
        assert text not in console, text
    assert 'Environment, config and hook order are in' in console
    assert 'Epoch(train)' in console
    log = _log_text(work_dir)
    for text in SETUP_TEXTS:
        assert text in log, text
    if not torch.cuda.is_available():
        assert 'GPU number' not in log and 'Processes: 1' in log

    test_dir = tmp_path / 'test'
    proc = run_tool('test.py', str(tiny_config),
                    str(work_dir / 'epoch_1.pth'), '--work-dir',
                    str(test_dir))
    console = proc.stdout + proc.stderr
    assert not any(text in console for text in SETUP_TEXTS)
    assert 'Epoch(test)' in console


def test_verbose_prints_the_setup(run_tool, tiny_config, tmp_path):
    proc = run_tool('train.py', str(tiny_config), '--work-dir',
                    str(tmp_path / 'work'), '--verbose')
    for text in SETUP_TEXTS:
        assert text in proc.stdout, text
    assert 'Environment, config and hook order are in' not in proc.stdout
