"""High-level APIs: model building, inference and feature extraction."""
from dinov3_mm.utils.checkpoint_io import CheckpointError
from dinov3_mm.utils.state_dict_loading import CheckpointMismatchError

from .checkpoint_conversion import (backbone_cfg_for_checkpoint,
                                    convert_checkpoint)
from .det_inference import (detector_meta, inference_detector, is_detector,
                            predictions_to_coco, write_det_outputs)
from .features import extract_features
from .inference import (build_test_pipeline, inference_classifier,
                        init_model, is_annotation_loader, transform_type_name)
from .lora_merge import merge_lora_checkpoint
from .ood import DEPLOYABLE_SCORES, run_ood, write_ood_threshold
from .pca_features import run_pca_features
from .robustness import run_robustness
from .seg_inference import inference_segmentor, write_seg_outputs
from .task_inference import inference_model, predict_in_batches
from .unreadable import header_problems, write_skipped_csv

__all__ = [
    'init_model', 'inference_model', 'extract_features', 'build_test_pipeline',
    'inference_classifier', 'inference_segmentor', 'write_seg_outputs',
    'run_pca_features', 'convert_checkpoint', 'backbone_cfg_for_checkpoint',
    'merge_lora_checkpoint', 'is_annotation_loader', 'transform_type_name',
    'CheckpointError', 'CheckpointMismatchError', 'predict_in_batches',
    'header_problems', 'write_skipped_csv', 'run_ood', 'write_ood_threshold',
    'DEPLOYABLE_SCORES', 'run_robustness', 'inference_detector',
    'is_detector', 'detector_meta', 'predictions_to_coco',
    'write_det_outputs'
]
