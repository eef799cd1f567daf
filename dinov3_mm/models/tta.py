"""Test-time augmentation of classifiers with mmengine's TTA machinery."""
from typing import List, Sequence

import torch
from mmengine.model import BaseTTAModel

from dinov3_mm.registry import MODELS
from dinov3_mm.structures import DataSample


@MODELS.register_module()
class ClsTTAModel(BaseTTAModel):
    """Average the class probabilities of several views of each image.

    Built by ``tools/test.py --tta`` around the config's classifier, with a
    ``tta_pipeline`` whose ``TestTimeAug`` step packs each view (by default
    the image and its horizontal flip). Every view runs through the
    classifier's own ``test_step``; the merged sample keeps the first view's
    fields and meta information and gets ``pred_score`` = mean of the views'
    scores and ``pred_label`` = its argmax (multi-label heads: the classes
    whose mean score reaches the head's ``thr``).

    The Runner loads checkpoints into ``module`` (the classifier), so a
    checkpoint trained without TTA loads strictly.

    Args:
        module (dict | nn.Module): The classifier.
        data_preprocessor (dict, optional): Replaces the classifier's.
    """

    def __init__(self, module, data_preprocessor=None):
        super().__init__(module=module, data_preprocessor=data_preprocessor)

    def merge_preds(self, data_samples_list: Sequence[Sequence[DataSample]]
                    ) -> List[DataSample]:
        """One sample per image from its views' predictions.

        Args:
            data_samples_list: Per image, the predicted samples of its views.

        Returns:
            list[DataSample]: Merged predictions, one per image.
        """
        head = getattr(self.module, 'head', None)
        multi_label = bool(getattr(head, 'multi_label', False))
        thr = float(getattr(head, 'thr', 0.5))
        merged = []
        for views in data_samples_list:
            score = torch.stack([v.pred_score.float() for v in views]).mean(0)
            sample = views[0]
            sample.set_pred_score(score)
            if multi_label:
                sample.set_pred_label(torch.nonzero(score >= thr)[:, 0])
            else:
                sample.set_pred_label(score.argmax().item())
            merged.append(sample)
        return merged
