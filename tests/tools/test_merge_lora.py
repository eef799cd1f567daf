"""tools/merge_lora.py: a LoRA checkpoint becomes a plain one."""
import torch
from mmengine.config import Config


def _write_config(path, model_cfg):
    Config(dict(default_scope='dinov3_mm', model=model_cfg)).dump(str(path))
    return path


def test_merge_tool(tmp_path, repo_root, run_python, lora_checkpoint):
    config = _write_config(tmp_path / 'lora_cfg.py',
                           lora_checkpoint['model_cfg'])
    model, ckpt = lora_checkpoint['model'], lora_checkpoint['checkpoint']
    out = tmp_path / 'merged' / 'merged.pth'

    result = run_python(args=[repo_root / 'tools' / 'merge_lora.py', config,
                              ckpt, out])
    assert result.returncode == 0, result.stderr
    assert 'merged.pth' in result.stdout
    assert [p.name for p in out.parent.iterdir()] == ['merged.pth']

    merged = torch.load(out, weights_only=True)
    assert merged['meta']['epoch'] == 1
    assert merged['meta']['lora']['r'] == 4
    plain = lora_checkpoint['build'](lora=False)
    plain.load_state_dict(merged['state_dict'], strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), model(x), atol=1e-5, rtol=1e-5)


def test_merge_tool_needs_lora(tmp_path, repo_root, run_python,
                               lora_checkpoint):
    model_cfg = dict(lora_checkpoint['model_cfg'])
    model_cfg.pop('lora')
    config = _write_config(tmp_path / 'plain_cfg.py', model_cfg)
    result = run_python(args=[repo_root / 'tools' / 'merge_lora.py', config,
                              tmp_path / 'x.pth', tmp_path / 'y.pth'])
    assert result.returncode != 0
    assert 'model.lora is not set' in result.stderr
