"""Triton Python-backend model: model outputs -> labels or a mask.

Written into a model repository by ``tools/deploy.py`` with ``image_ops.py``
and ``postprocess.json`` (task, class names, top-k, threshold).

Classification: ``PROBS`` (FP32 ``[K]``) -> ``LABELS`` (BYTES ``[k]``),
``SCORES`` (FP32 ``[k]``), ``CLASS_IDS`` (INT32 ``[k]``), best first.
Segmentation: ``LOGITS`` (FP32 ``[K, H, W]``) and ``META`` -> ``MASK``
(UINT8 ``[ori_h, ori_w]``): padding removed, logits resized to the original
image size, then argmax (or sigmoid > threshold for one class).
"""
import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils
from image_ops import logits_to_mask, restore_logits


class TritonPythonModel:
    """Top-k labels or a full-size class mask per image."""

    def initialize(self, args):
        folder = os.path.join(args['model_repository'],
                              args['model_version'])
        with open(os.path.join(folder, 'postprocess.json')) as f:
            self.spec = json.load(f)
        self.classes = np.asarray(self.spec['classes'], dtype=object)

    def _classification(self, request):
        probs = pb_utils.get_input_tensor_by_name(request, 'PROBS').as_numpy()
        k = min(int(self.spec['topk']), probs.shape[1])
        ids = np.argsort(-probs, axis=1, kind='stable')[:, :k]
        scores = np.take_along_axis(probs, ids, axis=1)
        labels = np.vectorize(lambda i: self.classes[i].encode(),
                              otypes=[object])(ids)
        return [
            pb_utils.Tensor('LABELS', labels.astype(np.object_)),
            pb_utils.Tensor('SCORES', scores.astype(np.float32)),
            pb_utils.Tensor('CLASS_IDS', ids.astype(np.int32)),
        ]

    def _segmentation(self, request):
        logits = pb_utils.get_input_tensor_by_name(request,
                                                   'LOGITS').as_numpy()
        meta = pb_utils.get_input_tensor_by_name(request, 'META').as_numpy()
        masks = [
            logits_to_mask(restore_logits(lg, m), self.spec['threshold'])
            for lg, m in zip(logits, meta)
        ]
        shapes = {m.shape for m in masks}
        if len(shapes) > 1:
            raise ValueError('images of different sizes in one request; '
                             'send them in separate requests')
        return [pb_utils.Tensor('MASK', np.stack(masks))]

    def execute(self, requests):
        run = (self._classification if self.spec['task'] == 'classification'
               else self._segmentation)
        responses = []
        for request in requests:
            try:
                responses.append(
                    pb_utils.InferenceResponse(output_tensors=run(request)))
            except Exception as exc:
                responses.append(pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(f'postprocess: {exc}')))
        return responses
