"""Triton Python-backend model: model outputs -> labels, a mask or
detections.

Written into a model repository by ``tools/deploy.py`` with ``image_ops.py``,
``det_ops.py`` and ``postprocess.json`` (task, class names, top-k,
threshold; detection: score / mask thresholds, input size).

Classification: ``PROBS`` (FP32 ``[K]``) -> ``LABELS`` (BYTES ``[k]``),
``SCORES`` (FP32 ``[k]``), ``CLASS_IDS`` (INT32 ``[k]``), best first; with
an ``ood`` entry (``{"score": "msp", "threshold": t}``) also ``OOD`` (BOOL
``[1]``): the top probability is below ``t``.
Segmentation: ``LOGITS`` (FP32 ``[K, H, W]``) and ``META`` -> ``MASK``
(UINT8 ``[ori_h, ori_w]``): padding removed, logits resized to the original
image size, then argmax (or sigmoid > threshold for one class).

A ``META`` this model cannot apply (padding beyond the logits, an original
size above ``max_image_pixels`` of ``postprocess.json``, images of
different sizes in one request) is the caller's error: INVALID_ARG (HTTP
400, gRPC INVALID_ARGUMENT). Other failures are INTERNAL.
"""
import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils
from det_ops import boxes_to_original, masks_to_original, select_detections
from image_ops import (ImageRejected, check_image_pixels, logits_to_mask,
                       restore_logits)


class ClientError(ValueError):
    """The request itself is wrong; answered with INVALID_ARG."""


def _check_meta(index: int, meta: np.ndarray, hw: tuple,
                max_pixels) -> None:
    ori_h, ori_w, top, bottom, left, right = (int(v) for v in meta)
    h, w = hw
    if min(top, bottom, left, right) < 0 or top + bottom >= h or \
            left + right >= w or ori_h < 1 or ori_w < 1:
        raise ClientError(
            f'META of image {index} ([ori_h, ori_w, top, bottom, left, '
            f'right] = {[int(v) for v in meta]}) does not fit {h}x{w} '
            f'logits; pass the META the preprocess model returned')
    try:
        check_image_pixels(ori_w, ori_h, max_pixels)
    except ImageRejected as exc:
        raise ClientError(f'META of image {index}: {exc}') from exc


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
        outputs = [
            pb_utils.Tensor('LABELS', labels.astype(np.object_)),
            pb_utils.Tensor('SCORES', scores.astype(np.float32)),
            pb_utils.Tensor('CLASS_IDS', ids.astype(np.int32)),
        ]
        ood = self.spec.get('ood')
        if ood:
            flags = probs.max(axis=1, keepdims=True) < ood['threshold']
            outputs.append(pb_utils.Tensor('OOD', flags.astype(np.bool_)))
        return outputs

    def _segmentation(self, request):
        logits = pb_utils.get_input_tensor_by_name(request,
                                                   'LOGITS').as_numpy()
        meta = pb_utils.get_input_tensor_by_name(request, 'META').as_numpy()
        for i, m in enumerate(meta):
            _check_meta(i, m, logits.shape[-2:],
                        self.spec.get('max_image_pixels'))
        if len({(int(m[0]), int(m[1])) for m in meta}) > 1:
            raise ClientError('images of different sizes in one request; '
                              'send them in separate requests')
        masks = [
            logits_to_mask(restore_logits(lg, m), self.spec['threshold'])
            for lg, m in zip(logits, meta)
        ]
        return [pb_utils.Tensor('MASK', np.stack(masks))]

    def _detection(self, request):
        def get(name):
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            return None if tensor is None else tensor.as_numpy()

        boxes, scores, labels = (get('DET_BOXES'), get('DET_SCORES'),
                                 get('DET_LABELS'))
        mask_logits, meta = get('DET_MASKS'), get('META')
        input_hw = tuple(self.spec['input_size'])
        for i, m in enumerate(meta):
            _check_meta(i, m, input_hw, self.spec.get('max_image_pixels'))
        with_mask = mask_logits is not None
        if with_mask and len({(int(m[0]), int(m[1])) for m in meta}) > 1:
            raise ClientError('images of different sizes in one request; '
                              'send them in separate requests')
        keeps = [select_detections(s, self.spec['score_threshold'])
                 for s in scores]
        n = max([1] + [len(k) for k in keeps])
        batch = len(scores)
        out_boxes = np.zeros((batch, n, 4), np.float32)
        out_scores = np.zeros((batch, n), np.float32)
        out_ids = np.full((batch, n), -1, np.int32)
        out_names = np.full((batch, n), b'', dtype=object)
        counts = np.array([[len(k)] for k in keeps], np.int32)
        if with_mask:
            ori_h, ori_w = int(meta[0][0]), int(meta[0][1])
            out_masks = np.zeros((batch, n, ori_h, ori_w), np.uint8)
        for b, keep in enumerate(keeps):
            count = len(keep)
            out_boxes[b, :count] = boxes_to_original(boxes[b, keep], meta[b],
                                                     input_hw)
            out_scores[b, :count] = scores[b, keep]
            out_ids[b, :count] = labels[b, keep]
            out_names[b, :count] = [self.classes[i].encode()
                                    for i in labels[b, keep]]
            if with_mask and count:
                out_masks[b, :count] = masks_to_original(
                    mask_logits[b, keep], meta[b], input_hw,
                    self.spec.get('mask_threshold', 0.0))
        outputs = [
            pb_utils.Tensor('NUM_DETECTIONS', counts),
            pb_utils.Tensor('BOXES', out_boxes),
            pb_utils.Tensor('SCORES', out_scores),
            pb_utils.Tensor('CLASS_IDS', out_ids),
            pb_utils.Tensor('LABELS', out_names.astype(np.object_)),
        ]
        if with_mask:
            outputs.append(pb_utils.Tensor('MASKS', out_masks))
        return outputs

    def execute(self, requests):
        run = {'classification': self._classification,
               'detection': self._detection}.get(self.spec['task'],
                                                 self._segmentation)
        responses = []
        for request in requests:
            try:
                responses.append(
                    pb_utils.InferenceResponse(output_tensors=run(request)))
            except ClientError as exc:
                responses.append(_error(str(exc),
                                        pb_utils.TritonError.INVALID_ARG))
            except Exception as exc:  # a server fault
                responses.append(_error(
                    f'internal error ({type(exc).__name__}: {exc})',
                    pb_utils.TritonError.INTERNAL))
        return responses


def _error(message: str, code) -> 'pb_utils.InferenceResponse':
    return pb_utils.InferenceResponse(
        error=pb_utils.TritonError(f'postprocess: {message}', code))
