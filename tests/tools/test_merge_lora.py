"""tools/merge_lora.py: a LoRA checkpoint becomes a plain one."""
import copy
import textwrap

import torch
from mmengine.config import Config

from dinov3_mm.registry import MODELS

CONFIG = textwrap.dedent("""
    default_scope = 'dinov3_mm'
    model = dict(
        type='DINOv3Classifier',
        backbone=dict(type='DINOv3ViT',
                      arch=dict(embed_dims=64, num_layers=2, num_heads=2),
                      out_type='cls_patch_avg',
                      init_cfg=dict(type='Pretrained',
                                    checkpoint='/nonexistent/weights.pth')),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=128),
        lora=dict(r=4, alpha=8))
""")


def test_merge_tool(tmp_path, repo_root, run_python):
    config = tmp_path / 'lora_cfg.py'
    config.write_text(CONFIG)
    model_cfg = copy.deepcopy(Config.fromfile(str(config)).model)
    model_cfg.backbone.pop('init_cfg')
    torch.manual_seed(0)
    model = MODELS.build(model_cfg).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if 'lora_B' in name:
                param.normal_(std=0.1)
    ckpt = tmp_path / 'epoch_1.pth'
    torch.save(dict(meta=dict(epoch=1), state_dict=model.state_dict()), ckpt)
    out = tmp_path / 'merged' / 'merged.pth'

    result = run_python(args=[repo_root / 'tools' / 'merge_lora.py', config,
                              ckpt, out])
    assert result.returncode == 0, result.stderr
    assert 'merged.pth' in result.stdout
    assert [p.name for p in out.parent.iterdir()] == ['merged.pth']

    merged = torch.load(out, weights_only=True)
    assert merged['meta']['epoch'] == 1
    assert merged['meta']['lora']['r'] == 4
    plain_cfg = copy.deepcopy(model_cfg)
    plain_cfg.pop('lora')
    plain = MODELS.build(plain_cfg).eval()
    plain.load_state_dict(merged['state_dict'], strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), model(x), atol=1e-5, rtol=1e-5)


def test_merge_tool_needs_lora(tmp_path, repo_root, run_python):
    config = tmp_path / 'plain_cfg.py'
    config.write_text(CONFIG.replace('lora=dict(r=4, alpha=8)', ''))
    result = run_python(args=[repo_root / 'tools' / 'merge_lora.py', config,
                              tmp_path / 'x.pth', tmp_path / 'y.pth'])
    assert result.returncode != 0
    assert 'model.lora is not set' in result.stderr
