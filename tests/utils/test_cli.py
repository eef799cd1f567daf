"""dinov3_mm.utils.cli: user errors end in one line, tracebacks on request."""
import pytest

from dinov3_mm.utils.cli import (UserError, add_debug_argument, cli_main,
                                 debug_requested, require_checkpoint,
                                 require_config)


class _Known(ValueError):
    exit_code = 3


def _run(main, capsys, user_errors=()):
    with pytest.raises(SystemExit) as info:
        cli_main(main, user_errors=user_errors)
    return info.value.code, capsys.readouterr().err


def _raise(exc):

    def main():
        raise exc

    return main


def test_user_error_prints_one_line_and_its_exit_code(capsys, monkeypatch):
    monkeypatch.setattr('sys.argv', ['tool.py'])
    monkeypatch.delenv('DINOV3_MM_DEBUG', raising=False)
    code, err = _run(_raise(UserError('config x.py does not exist; do y',
                                      exit_code=2)), capsys)
    assert code == 2
    assert err == 'error: config x.py does not exist; do y\n'


def test_named_error_types_are_user_errors_too(capsys, monkeypatch):
    monkeypatch.setattr('sys.argv', ['tool.py'])
    monkeypatch.delenv('DINOV3_MM_DEBUG', raising=False)
    code, err = _run(_raise(_Known('bad value')), capsys, (_Known, ))
    assert code == 3
    assert err.splitlines() == [
        'error: bad value', '(run again with --debug for the traceback)']


def test_other_errors_and_debug_keep_the_traceback(monkeypatch):
    monkeypatch.setattr('sys.argv', ['tool.py'])
    monkeypatch.delenv('DINOV3_MM_DEBUG', raising=False)
    with pytest.raises(KeyError):
        cli_main(_raise(KeyError('bug')), user_errors=(_Known, ))
    monkeypatch.setattr('sys.argv', ['tool.py', '--debug'])
    with pytest.raises(UserError):
        cli_main(_raise(UserError('x')))
    monkeypatch.setattr('sys.argv', ['tool.py'])
    monkeypatch.setenv('DINOV3_MM_DEBUG', '1')
    assert debug_requested()
    with pytest.raises(UserError):
        cli_main(_raise(UserError('x')))


def test_return_value_is_the_exit_code(monkeypatch):
    monkeypatch.setattr('sys.argv', ['tool.py'])
    cli_main(lambda: 0)
    cli_main(lambda: None)
    with pytest.raises(SystemExit) as info:
        cli_main(lambda: 4)
    assert info.value.code == 4


def test_debug_argument_is_listed():
    import argparse
    parser = argparse.ArgumentParser()
    add_debug_argument(parser)
    assert parser.parse_args(['--debug']).debug is True
    assert '--debug' in parser.format_help()


def test_require_config_names_the_path_and_suggests(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'configs' / 'demo').mkdir(parents=True)
    (tmp_path / 'configs' / 'demo' / 'x.py').write_text('')
    assert require_config('configs/demo/x.py') == 'configs/demo/x.py'
    with pytest.raises(UserError) as info:
        require_config('x.py')
    assert str(info.value) == ('config x.py does not exist; did you mean '
                               'configs/demo/x.py?')
    with pytest.raises(UserError, match='configs live under configs/'):
        require_config('configs/nothing_like_it.py')
    with pytest.raises(UserError, match='is a folder, not a file'):
        require_config('configs')


def test_require_checkpoint(tmp_path):
    ckpt = tmp_path / 'epoch_1.pth'
    ckpt.write_bytes(b'')
    assert require_checkpoint(str(ckpt)) == str(ckpt)
    with pytest.raises(UserError) as info:
        require_checkpoint(str(tmp_path / 'nope.pth'), '--resume')
    message = str(info.value)
    assert message.startswith(
        f'checkpoint --resume {tmp_path / "nope.pth"} does not exist; ')
    assert 'tools/train.py' in message
    assert require_checkpoint(str(tmp_path), 'hf') == str(tmp_path)
    with pytest.raises(UserError, match='is a folder, not a file'):
        require_checkpoint(str(tmp_path))
