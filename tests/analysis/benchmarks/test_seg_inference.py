"""The whole-vs-slide benchmark times both modes on the same weights."""
import torch

from benchmarks.seg_inference import (benchmark_whole_vs_slide,
                                      build_segmentor, peak_inference_mib,
                                      seg_rows_to_markdown)

TINY = """
model = dict(
    type='DINOv3Segmentor',
    backbone=dict(type='DINOv3ViT',
                  arch=dict(embed_dims=48, num_layers=2, num_heads=3),
                  out_type='featmap', out_indices=(-1, )),
    decode_head=dict(type='LinearSegHead', in_channels=48, num_classes=3))
"""


def test_row_windows_and_table(tmp_path):
    config = tmp_path / 'tiny.py'
    config.write_text(TINY)
    row = benchmark_whole_vs_slide(str(config), 'bf16', img_size=64,
                                   crop_size=(32, 32), stride=(16, 16),
                                   rounds=1, iters=1, measure_memory=False)
    assert row['windows'] == 9  # 3 x 3 windows of 32 at stride 16 over 64
    assert row['whole_img_s'] > 0 and row['slide_img_s'] > 0
    ratio = row['whole_img_s'] / row['slide_img_s']
    assert abs(row['slide_over_whole_time'] - ratio) < 0.05 * ratio + 0.01
    table = seg_rows_to_markdown([row])
    assert '| bf16 | 64 | 1 | 32x32 | 16x16 | 9 |' in table


def test_slide_mode_built_and_memory_measured(tmp_path):
    config = tmp_path / 'tiny.py'
    config.write_text(TINY)
    model = build_segmentor(str(config), 'slide', (32, 32), (16, 16))
    assert model.test_cfg['mode'] == 'slide' and not model.training
    with torch.no_grad():
        assert model.inference(torch.randn(1, 3, 64, 48)).shape == (1, 3, 64,
                                                                     48)
    peak = peak_inference_mib(str(config), 'whole', (32, 32), (16, 16),
                              'fp32', 1, 64)
    assert peak >= 0
