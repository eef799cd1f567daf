"""Triton Python-backend model: encoded image bytes -> model input.

Written into a model repository by ``tools/deploy.py`` together with
``image_ops.py`` (the same decoding, resize/pad and normalisation code the
test pipeline runs) and ``preprocess.json`` (the serving spec of the
exported config).

Input ``IMAGE`` (BYTES, ``[1]`` per item); outputs ``INPUT`` (FP32,
``[3, H, W]``) and ``META`` (INT32, ``[ori_h, ori_w, top, bottom, left,
right]``). An unreadable image fails its own request only.
"""
import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils
from image_ops import preprocess_encoded


class TritonPythonModel:
    """Decode, resize/pad and normalise every image of every request."""

    def initialize(self, args):
        folder = os.path.join(args['model_repository'],
                              args['model_version'])
        with open(os.path.join(folder, 'preprocess.json')) as f:
            self.spec = json.load(f)

    def _request(self, request):
        images = pb_utils.get_input_tensor_by_name(request,
                                                   'IMAGE').as_numpy()
        inputs, metas = [], []
        for i, item in enumerate(images.reshape(len(images), -1)[:, 0]):
            data = item if isinstance(item, bytes) else bytes(item)
            try:
                x, meta = preprocess_encoded(data, self.spec)
            except Exception as exc:  # any decoder failure is the client's
                raise ValueError(f'image {i} of the request: {exc}') from exc
            inputs.append(x)
            metas.append(meta)
        return pb_utils.InferenceResponse(output_tensors=[
            pb_utils.Tensor('INPUT', np.stack(inputs).astype(np.float32)),
            pb_utils.Tensor('META', np.asarray(metas, dtype=np.int32)),
        ])

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                responses.append(self._request(request))
            except Exception as exc:
                responses.append(pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(f'preprocess: {exc}')))
        return responses
