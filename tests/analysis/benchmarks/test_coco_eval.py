"""The COCO evaluation benchmark: both evaluators agree; memory is measured."""
from benchmarks.coco_eval import (benchmark_evaluators, memory_markdown,
                                  metric_memory, speed_markdown,
                                  synthetic_image)


def test_synthetic_image_shapes():
    ori_gt, pred = synthetic_image(0, instances=3, size=32)
    assert ori_gt['bboxes'].shape == (3, 4) and len(ori_gt['masks']) == 3
    assert pred['masks'].shape == (6, 32, 32) and pred['scores'].shape == (6, )


def test_speed_rows_and_memory_row():
    rows = benchmark_evaluators(images=3, instances=4, size=48, rounds=1)
    assert [r['iou_type'] for r in rows] == ['bbox', 'segm']
    for row in rows:
        assert row['mAP_pycocotools'] == row['mAP_faster_coco_eval']
        assert row['detections'] == 3 * 8
    assert '| bbox | 3 | 4 | 48 | 24 |' in speed_markdown(rows)
    row = metric_memory(images=2, instances=3, size=32)
    assert row['peak_total_mib'] >= 0
    assert 'bbox_mAP' in row['values'] and 'segm_mAP' in row['values']
    assert '| bbox+segm | 2 | 3 | 32 |' in memory_markdown([row])
