"""Triton Inference Server model repositories for an exported model.

Layout written by :func:`write_triton_repository` (``NAME`` defaults to
``dinov3``)::

    <repo>/
      NAME_preprocess/   Python backend: image bytes -> INPUT, META
      NAME_model/        onnxruntime_onnx (or Python backend + onnxruntime)
      NAME_postprocess/  Python backend: PROBS -> LABELS/SCORES/CLASS_IDS
                         (and OOD with an OOD threshold),
                         or LOGITS + META -> MASK,
                         or DET_* + META -> detections (see below)
      NAME/              ensemble: IMAGE -> labels / MASK / detections /
                         EMBEDDINGS

Detection ensembles return, per image of a request of ``B`` images (``N``:
the most detections any of them kept, at least 1):

- ``NUM_DETECTIONS`` INT32 ``[B, 1]``: detections of each image; rows past
  it are padding (score 0, class id -1, empty label and mask);
- ``BOXES`` FP32 ``[B, N, 4]``: ``x1, y1, x2, y2`` in original-image pixels;
- ``SCORES`` FP32 ``[B, N]`` (best first, each >= the served score
  threshold), ``CLASS_IDS`` INT32 ``[B, N]`` (0-based labels), ``LABELS``
  BYTES ``[B, N]`` (class names);
- mask models: ``MASKS`` UINT8 ``[B, N, ori_h, ori_w]`` of 0/1, at the
  original image size (the images of one request must then share a size,
  like segmentation requests).

A client sends encoded image files to ``NAME`` (input ``IMAGE``, BYTES,
shape ``[batch, 1]``). Every model batches (``max_batch_size``); the ONNX
model has dynamic batching with preferred sizes and a queue delay.

The preprocessing refuses images above the spec's ``limits`` with
INVALID_ARG. Triton releases of 2025 on also cap HTTP bodies
(``--http-max-input-size``, 64 MiB by default), which would refuse a full
batch of images below the byte limit first: :func:`server_args` gives the
option that keeps the limit in charge (the launcher adds it when its
``tritonserver`` knows it; 2.51, the release in ``nvidia-pytriton`` and in
the serving image, has no cap).
"""
import json
import os
import os.path as osp
import re
import shutil
from typing import Dict, List, Optional, Sequence, Tuple

from dinov3_mm.utils.image_ops import DEFAULT_MAX_IMAGE_BYTES

from .export_wrapper import OUTPUT_NAMES

TEMPLATES = osp.join(osp.dirname(osp.abspath(__file__)), 'triton_models')
IMAGE_OPS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                     'utils', 'image_ops.py')
DET_OPS = osp.join(osp.dirname(IMAGE_OPS), 'det_ops.py')
BACKENDS = ('onnxruntime', 'python')
INSTANCE_KINDS = {'cpu': 'KIND_CPU', 'gpu': 'KIND_GPU'}

# (name, Triton data type, dims) per tensor
Tensor = Tuple[str, str, Sequence[int]]
#: Room in an HTTP body for the JSON header and per-image length prefixes.
HTTP_OVERHEAD_BYTES = 1 << 20


def http_max_input_size(max_image_bytes: Optional[int],
                        max_batch_size: int) -> Optional[int]:
    """The HTTP body a full batch of images at the byte limit needs.

    Returns None without a byte limit (nothing to size the body by).
    """
    if max_image_bytes is None:
        return None
    return max_batch_size * (max_image_bytes + 4) + HTTP_OVERHEAD_BYTES


def server_args(limits: dict, max_batch_size: int) -> List[str]:
    """``tritonserver`` options a repository with these limits needs.

    Only for Triton releases that know ``--http-max-input-size``; earlier
    ones, such as 2.51 (24.10) of ``nvidia-pytriton`` and the serving image,
    do not cap HTTP bodies and refuse the option.
    """
    size = http_max_input_size(limits.get('max_image_bytes'),
                               max_batch_size)
    return [] if size is None else [f'--http-max-input-size={size}']


def repository_http_input_size(repo: str) -> Optional[int]:
    """The largest :func:`http_max_input_size` of a repository's
    preprocessing models (from ``preprocess.json`` and ``config.pbtxt``);
    None if none has a byte limit."""
    sizes = []
    for name in sorted(os.listdir(repo)):
        spec_path = osp.join(repo, name, '1', 'preprocess.json')
        config_path = osp.join(repo, name, 'config.pbtxt')
        if not (osp.isfile(spec_path) and osp.isfile(config_path)):
            continue
        with open(spec_path) as f:
            limits = json.load(f).get('limits') or {}
        with open(config_path) as f:
            batch = re.search(r'max_batch_size:\s*(\d+)', f.read())
        size = http_max_input_size(limits.get('max_image_bytes',
                                              DEFAULT_MAX_IMAGE_BYTES),
                                   max(1, int(batch.group(1)) if batch else 1))
        if size is not None:
            sizes.append(size)
    return max(sizes) if sizes else None


def model_names(name: str = 'dinov3') -> Dict[str, str]:
    """Names of the ensemble and its three steps."""
    return dict(ensemble=name, preprocess=f'{name}_preprocess',
                model=f'{name}_model', postprocess=f'{name}_postprocess')


def _tensors(kind: str, tensors: Sequence[Tensor]) -> str:
    items = []
    for name, dtype, dims in tensors:
        items.append(f'  {{\n    name: "{name}"\n    data_type: {dtype}\n'
                     f'    dims: [ {", ".join(str(d) for d in dims)} ]\n  }}')
    return f'{kind} [\n' + ',\n'.join(items) + '\n]\n'


def _config(name: str, max_batch_size: int, inputs: Sequence[Tensor],
            outputs: Sequence[Tensor], head: str, tail: str = '') -> str:
    return (f'name: "{name}"\n{head}max_batch_size: {max_batch_size}\n'
            + _tensors('input', inputs) + _tensors('output', outputs) + tail)


def _instances(kind: str, count: int) -> str:
    return (f'instance_group [\n  {{\n    count: {count}\n'
            f'    kind: {kind}\n  }}\n]\n')


def _batching(preferred: Sequence[int], delay_us: int) -> str:
    sizes = ', '.join(str(s) for s in preferred)
    return ('dynamic_batching {\n'
            f'  preferred_batch_size: [ {sizes} ]\n'
            f'  max_queue_delay_microseconds: {delay_us}\n}}\n')


def _parameters(params: Dict[str, str]) -> str:
    def quoted(value: str) -> str:
        return value.replace('\\', '\\\\').replace('"', '\\"')

    return ''.join(f'parameters {{\n  key: "{k}"\n  value: {{ string_value: '
                   f'"{quoted(v)}" }}\n}}\n' for k, v in params.items())


def onnx_output_dims(onnx_path: str) -> Dict[str, List[int]]:
    """Output dimensions (without the batch axis) by name; -1 where the
    graph leaves a dimension open."""
    import onnx
    graph = onnx.load(onnx_path, load_external_data=False).graph
    return {o.name: [d.dim_value if d.HasField('dim_value') else -1
                     for d in o.type.tensor_type.shape.dim[1:]]
            for o in graph.output}


def _detection_tensors(dims: Dict[str, List[int]]) -> List[Tensor]:
    types = dict(boxes='TYPE_FP32', scores='TYPE_FP32', labels='TYPE_INT64',
                 masks='TYPE_FP32')
    return [(name, types[name], tuple(dims[name]))
            for name in OUTPUT_NAMES['detection'] if name in dims]


def _model_tensors(spec: dict, num_classes: int,
                   onnx_path: Optional[str] = None
                   ) -> Tuple[List[Tensor], List[Tensor]]:
    h, w = spec['input_size']
    inputs = [('input', 'TYPE_FP32', (3, h, w))]
    task = spec['task']
    if task == 'detection':
        outputs = _detection_tensors(onnx_output_dims(onnx_path))
        return inputs, outputs
    if task == 'classification':
        outputs = [('probs', 'TYPE_FP32', (num_classes, ))]
    elif task == 'segmentation':
        outputs = [('class_map', 'TYPE_INT64', (h, w)),
                   ('logits', 'TYPE_FP32', (num_classes, h, w))]
    else:
        outputs = [('embeddings', 'TYPE_FP32', (num_classes, ))]
    assert [t[0] for t in outputs] == list(OUTPUT_NAMES[task])
    return inputs, outputs


def _write(path: str, text: str) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)


def _python_model(folder: str, template: str, files: Dict[str, object]
                  ) -> None:
    version = osp.join(folder, '1')
    os.makedirs(version, exist_ok=True)
    shutil.copyfile(osp.join(TEMPLATES, template), osp.join(version,
                                                            'model.py'))
    shutil.copyfile(IMAGE_OPS, osp.join(version, 'image_ops.py'))
    shutil.copyfile(DET_OPS, osp.join(version, 'det_ops.py'))
    for name, content in files.items():
        _write(osp.join(version, name), json.dumps(content, indent=2))


def _ensemble_steps(names: Dict[str, str], task: str,
                    ood: bool = False, with_mask: bool = False) -> str:
    def step(model, inputs, outputs):
        maps = ''.join(f'      input_map {{ key: "{k}" value: "{v}" }}\n'
                       for k, v in inputs.items())
        maps += ''.join(f'      output_map {{ key: "{k}" value: "{v}" }}\n'
                        for k, v in outputs.items())
        return (f'    {{\n      model_name: "{model}"\n'
                f'      model_version: -1\n{maps}    }}')

    # META (padding, original size) only matters to masks and boxes
    pre_out = {'INPUT': 'preprocessed'}
    if task in ('segmentation', 'detection'):
        pre_out['META'] = 'meta'
    steps = [step(names['preprocess'], {'IMAGE': 'IMAGE'}, pre_out)]
    if task == 'detection':
        raw = [n for n in OUTPUT_NAMES['detection']
               if n != 'masks' or with_mask]
        steps += [
            step(names['model'], {'input': 'preprocessed'},
                 {n: f'det_{n}' for n in raw}),
            step(names['postprocess'],
                 dict({f'DET_{n.upper()}': f'det_{n}' for n in raw},
                      META='meta'),
                 {n: n for n, _, _ in detection_outputs(with_mask)}),
        ]
    elif task == 'classification':
        steps += [
            step(names['model'], {'input': 'preprocessed'},
                 {'probs': 'probs'}),
            step(names['postprocess'], {'PROBS': 'probs'}, {
                name: name for name, _, _ in ensemble_outputs(
                    task, 1, 1, ood)
            }),
        ]
    elif task == 'segmentation':
        steps += [
            step(names['model'], {'input': 'preprocessed'},
                 {'logits': 'logits'}),
            step(names['postprocess'], {'LOGITS': 'logits', 'META': 'meta'},
                 {'MASK': 'MASK'}),
        ]
    else:
        steps.append(
            step(names['model'], {'input': 'preprocessed'},
                 {'embeddings': 'EMBEDDINGS'}))
    return 'ensemble_scheduling {\n  step [\n' + ',\n'.join(steps) + \
        '\n  ]\n}\n'


def detection_outputs(with_mask: bool) -> List[Tensor]:
    """What a client gets back from a detection ensemble (see the module
    docstring)."""
    outputs = [('NUM_DETECTIONS', 'TYPE_INT32', (1, )),
               ('BOXES', 'TYPE_FP32', (-1, 4)),
               ('SCORES', 'TYPE_FP32', (-1, )),
               ('CLASS_IDS', 'TYPE_INT32', (-1, )),
               ('LABELS', 'TYPE_STRING', (-1, ))]
    if with_mask:
        outputs.append(('MASKS', 'TYPE_UINT8', (-1, -1, -1)))
    return outputs


def ensemble_outputs(task: str, num_classes: int, topk: int,
                     ood: bool = False, with_mask: bool = False
                     ) -> List[Tensor]:
    """What a client gets back from the ensemble (``OOD`` with an OOD
    threshold; ``MASKS`` for a detector ``with_mask``)."""
    if task == 'detection':
        return detection_outputs(with_mask)
    if task == 'classification':
        k = min(topk, num_classes)
        return [('LABELS', 'TYPE_STRING', (k, )),
                ('SCORES', 'TYPE_FP32', (k, )),
                ('CLASS_IDS', 'TYPE_INT32', (k, ))] + (
                    [('OOD', 'TYPE_BOOL', (1, ))] if ood else [])
    if task == 'segmentation':
        return [('MASK', 'TYPE_UINT8', (-1, -1))]
    return [('EMBEDDINGS', 'TYPE_FP32', (num_classes, ))]


def write_triton_repository(repo: str,
                            onnx_path: str,
                            spec: dict,
                            num_outputs: int,
                            name: str = 'dinov3',
                            backend: str = 'onnxruntime',
                            max_batch_size: int = 8,
                            preferred_batch_sizes: Optional[Sequence[int]] = None,
                            max_queue_delay_us: int = 2000,
                            instance_kind: str = 'cpu',
                            instance_count: int = 1,
                            topk: int = 5,
                            ood: Optional[dict] = None) -> Dict[str, str]:
    """Write a complete, servable model repository.

    Args:
        repo (str): Repository folder (created; existing models of the same
            names are replaced).
        onnx_path (str): The exported model.
        spec (dict): From :func:`~dinov3_mm.deploy.serving_spec.serving_spec`.
        num_outputs (int): Classes (classification, segmentation,
            detection) or embedding width (features).
        name (str): Ensemble name; the steps get suffixes. Defaults to
            ``'dinov3'``.
        backend (str): ``'onnxruntime'`` (``platform: "onnxruntime_onnx"``)
            or ``'python'`` (onnxruntime inside the Python backend).
        max_batch_size (int): Largest batch of every model. Defaults to 8.
        preferred_batch_sizes (sequence[int], optional): Dynamic batcher
            targets; default: powers of two up to ``max_batch_size``.
        max_queue_delay_us (int): Dynamic batcher delay. Defaults to 2000.
        instance_kind (str): ``'cpu'`` or ``'gpu'`` for the ONNX model (pre-
            and postprocessing always run on the CPU).
        instance_count (int): Instances of the ONNX model. Defaults to 1.
        topk (int): Labels returned per image. Defaults to 5.
        ood (dict, optional): ``dict(score='msp', threshold=t)``: the
            classification postprocess also returns ``OOD`` (BOOL ``[1]``),
            true when the top probability is below ``t``.

    Returns:
        dict: Model role (``ensemble``, ``preprocess``, ``model``,
        ``postprocess``) to its folder.
    """
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {BACKENDS}, got '
                         f'{backend!r}.')
    if instance_kind not in INSTANCE_KINDS:
        raise ValueError(f'instance_kind must be one of '
                         f'{sorted(INSTANCE_KINDS)}, got {instance_kind!r}.')
    if max_batch_size < 1:
        raise ValueError(f'max_batch_size must be >= 1, got {max_batch_size}.')
    task = spec['task']
    if ood and task != 'classification':
        raise ValueError(f'An OOD threshold applies to classification, not '
                         f'{task!r}.')
    if task == 'segmentation' and num_outputs > 256:
        raise ValueError(f'{num_outputs} classes do not fit the UINT8 mask '
                         'output (at most 256).')
    names = model_names(name)
    folders = {role: osp.join(repo, n) for role, n in names.items()}
    for folder in folders.values():
        shutil.rmtree(folder, ignore_errors=True)
    preferred = list(preferred_batch_sizes or [
        b for b in (1, 2, 4, 8, 16, 32, 64, 128) if b <= max_batch_size
    ])
    h, w = spec['input_size']

    # the network
    inputs, outputs = _model_tensors(spec, num_outputs, onnx_path)
    det = spec.get('detection') or {}
    with_mask = bool(det.get('with_mask'))
    kind = INSTANCE_KINDS[instance_kind]
    tail = _batching(preferred, max_queue_delay_us) + _instances(
        kind, instance_count)
    version = osp.join(folders['model'], '1')
    os.makedirs(version)
    shutil.copyfile(onnx_path, osp.join(version, 'model.onnx'))
    if backend == 'onnxruntime':
        head = 'platform: "onnxruntime_onnx"\n'
    else:
        head = 'backend: "python"\n'
        providers = ('CUDAExecutionProvider,CPUExecutionProvider'
                     if instance_kind == 'gpu' else 'CPUExecutionProvider')
        tail += _parameters(dict(providers=providers))
        shutil.copyfile(osp.join(TEMPLATES, 'onnx_model.py'),
                        osp.join(version, 'model.py'))
    _write(osp.join(folders['model'], 'config.pbtxt'),
           _config(names['model'], max_batch_size, inputs, outputs, head,
                   tail))

    # pre- and postprocessing, always Python on the CPU
    python = 'backend: "python"\n'
    cpu = _instances('KIND_CPU', 1)
    meta = ('META', 'TYPE_INT32', (6, ))
    _python_model(folders['preprocess'], 'preprocess.py',
                  {'preprocess.json': spec})
    _write(osp.join(folders['preprocess'], 'config.pbtxt'),
           _config(names['preprocess'], max_batch_size,
                   [('IMAGE', 'TYPE_STRING', (1, ))],
                   [('INPUT', 'TYPE_FP32', (3, h, w)), meta], python,
                   _batching(preferred, max_queue_delay_us) + cpu))
    final = ensemble_outputs(task, num_outputs, topk, bool(ood), with_mask)
    if task != 'features':
        post_spec = dict(task=task, topk=topk, threshold=spec['threshold'],
                         classes=_class_list(spec, num_outputs),
                         max_image_pixels=(spec.get('limits') or {}).get(
                             'max_image_pixels'))
        if ood:
            post_spec['ood'] = dict(ood)
        if task == 'detection':
            post_spec.update(det, input_size=[h, w])
        _python_model(folders['postprocess'], 'postprocess.py',
                      {'postprocess.json': post_spec})
        if task == 'detection':
            post_inputs = [(f'DET_{n.upper()}', t, d)
                           for n, t, d in outputs] + [meta]
        elif task == 'classification':
            post_inputs = [('PROBS', 'TYPE_FP32', (num_outputs, ))]
        else:
            post_inputs = [('LOGITS', 'TYPE_FP32', (num_outputs, h, w)),
                           meta]
        # clients read the class names from the served model's config
        classes = _parameters(dict(classes=json.dumps(post_spec['classes'])))
        _write(osp.join(folders['postprocess'], 'config.pbtxt'),
               _config(names['postprocess'], max_batch_size, post_inputs,
                       final, python, cpu + classes))
    else:
        del folders['postprocess']

    _write(osp.join(folders['ensemble'], 'config.pbtxt'),
           _config(names['ensemble'], max_batch_size,
                   [('IMAGE', 'TYPE_STRING', (1, ))], final,
                   'platform: "ensemble"\n',
                   _ensemble_steps(names, task, bool(ood), with_mask)))
    os.makedirs(osp.join(folders['ensemble'], '1'), exist_ok=True)
    return folders


def _class_list(spec: dict, num_classes: int) -> List[str]:
    names = spec.get('classes') or []
    if len(names) != num_classes:
        names = [f'class_{i}' for i in range(num_classes)]
    return list(names)
