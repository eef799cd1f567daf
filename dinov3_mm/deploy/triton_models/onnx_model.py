"""Triton Python-backend model running ``model.onnx`` with onnxruntime.

For Triton builds without the onnxruntime backend (e.g. the server shipped
in the ``nvidia-pytriton`` wheel). The requests Triton's dynamic batcher
hands over in one call are concatenated into one onnxruntime run and split
again. ``model.onnx`` lies next to this file; the model config's
``parameters`` may set ``intra_op_threads``, ``allow_spinning`` (default
``'0'``) and ``providers``.

Triton checks the data type and shape of ``input`` against the model config
before this model sees a request; what onnxruntime still refuses as an
invalid argument (e.g. a size the graph cannot take with dynamic H/W) is
answered with INVALID_ARG (HTTP 400, gRPC INVALID_ARGUMENT), any other
failure with INTERNAL.
"""
import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

try:
    from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument
except ImportError:  # onnxruntime moved its exception classes
    InvalidArgument = ()


def _parameter(config: dict, key: str, default: str) -> str:
    value = config.get('parameters', {}).get(key, {}).get('string_value')
    return value or default


class TritonPythonModel:
    """One onnxruntime session per model instance."""

    def initialize(self, args):
        folder = os.path.join(args['model_repository'],
                              args['model_version'])
        config = json.loads(args['model_config'])
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(
            _parameter(config, 'intra_op_threads', '0'))
        # other backend processes share the cores: no busy-waiting threads
        options.add_session_config_entry(
            'session.intra_op.allow_spinning',
            _parameter(config, 'allow_spinning', '0'))
        providers = [
            p for p in _parameter(config, 'providers',
                                  'CPUExecutionProvider').split(',')
            if p in ort.get_available_providers()
        ] or ['CPUExecutionProvider']
        self.session = ort.InferenceSession(
            os.path.join(folder, 'model.onnx'), options, providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def execute(self, requests):
        batches = [
            pb_utils.get_input_tensor_by_name(r, self.input_name).as_numpy()
            for r in requests
        ]
        try:
            outputs = self.session.run(
                self.output_names,
                {self.input_name: np.concatenate(batches).astype(np.float32)})
        except InvalidArgument as exc:
            return [_error(f'onnxruntime refused the input: {exc}',
                           pb_utils.TritonError.INVALID_ARG)
                    for _ in requests]
        except Exception as exc:
            return [_error(f'onnxruntime failed: {exc}',
                           pb_utils.TritonError.INTERNAL)
                    for _ in requests]
        responses, start = [], 0
        for batch in batches:
            stop = start + len(batch)
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor(name, np.ascontiguousarray(out[start:stop]))
                for name, out in zip(self.output_names, outputs)
            ]))
            start = stop
        return responses


def _error(message: str, code) -> 'pb_utils.InferenceResponse':
    return pb_utils.InferenceResponse(
        error=pb_utils.TritonError(f'model: {message}', code))
