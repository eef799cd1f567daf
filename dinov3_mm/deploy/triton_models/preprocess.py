"""Triton Python-backend model: encoded image bytes -> model input.

Written into a model repository by ``tools/deploy.py`` together with
``image_ops.py`` (the same decoding, resize/pad and normalisation code the
test pipeline runs) and ``preprocess.json`` (the serving spec of the
exported config, with its ``limits``).

Input ``IMAGE`` (BYTES, ``[1]`` per item); outputs ``INPUT`` (FP32,
``[3, H, W]``) and ``META`` (INT32, ``[ori_h, ori_w, top, bottom, left,
right]``). Each image is checked against ``max_image_bytes`` and, from its
header, ``max_image_pixels`` before it is decoded. A request the client got
wrong (empty, corrupt or too large image; images of different sizes in one
request to a segmentor or a detector with masks) fails alone with
INVALID_ARG (HTTP 400, gRPC INVALID_ARGUMENT) and a message naming the
image's index; anything else is a server fault (INTERNAL, details in the
server log).
"""
import json
import os
import traceback

import numpy as np
import triton_python_backend_utils as pb_utils
from image_ops import preprocess_encoded


class ClientError(ValueError):
    """The request itself is wrong; answered with INVALID_ARG."""


def _error(message: str, client: bool):
    code = (pb_utils.TritonError.INVALID_ARG if client else
            pb_utils.TritonError.INTERNAL)
    return pb_utils.InferenceResponse(
        error=pb_utils.TritonError(f'preprocess: {message}', code))


def _images(request) -> np.ndarray:
    tensor = pb_utils.get_input_tensor_by_name(request, 'IMAGE')
    if tensor is None:
        raise ClientError('the request has no IMAGE input')
    images = tensor.as_numpy()
    if images.dtype != np.object_ or images.ndim != 2 or \
            images.shape[1] != 1:
        raise ClientError(f'IMAGE must be BYTES of shape [batch, 1], got '
                          f'{images.dtype.name} {list(images.shape)}')
    return images[:, 0]


class TritonPythonModel:
    """Decode, resize/pad and normalise every image of every request."""

    def initialize(self, args):
        folder = os.path.join(args['model_repository'],
                              args['model_version'])
        with open(os.path.join(folder, 'preprocess.json')) as f:
            self.spec = json.load(f)
        # full-size masks of one request form one array
        self._one_size = (self.spec['task'] == 'segmentation' or bool(
            (self.spec.get('detection') or {}).get('with_mask')))

    def _one(self, index: int, item) -> tuple:
        if not isinstance(item, (bytes, np.bytes_)):
            raise ClientError(f'image {index} of the request is not encoded '
                              f'bytes')
        try:
            return preprocess_encoded(bytes(item), self.spec)
        except ValueError as exc:  # unreadable or above a limit
            raise ClientError(f'image {index} of the request: {exc}') from exc

    def _request(self, request):
        inputs, metas = [], []
        for i, item in enumerate(_images(request)):
            x, meta = self._one(i, item)
            if (self._one_size and metas
                    and meta[:2] != metas[0][:2]):
                raise ClientError(
                    f'image {i} of the request is {meta[1]}x{meta[0]} but '
                    f'image 0 is {metas[0][1]}x{metas[0][0]}: one request '
                    f'returns one mask array, so send images of different '
                    f'sizes in separate requests')
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
            except ClientError as exc:
                responses.append(_error(str(exc), client=True))
            except Exception as exc:  # a server fault, not the client's
                pb_utils.Logger.log_error(
                    f'preprocess failed:\n{traceback.format_exc()}')
                responses.append(_error(
                    f'internal error ({type(exc).__name__}: {exc}); see '
                    f'the server log', client=False))
        return responses
