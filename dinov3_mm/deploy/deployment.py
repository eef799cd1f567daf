"""From a config and checkpoint to a verified ONNX file and Triton repositories.

Call graph of :func:`deploy` (what ``tools/deploy.py`` runs)::

    init_model(config, checkpoint) -> task (auto) -> serving_spec
    parity images (the config's test set, or --parity-images)
    ├── served preprocessing (image_ops) == test pipeline + preprocessor?
    export_onnx(precision, dynamic axes, fp16 overflow scan on the images)
    ├── check_parity at every size (input size; more with dynamic H/W)
    │   and batch size; int8: accuracy drop against the labels
    ├── parity_report.json / .md (written before failing)
    write_triton_repository(OUT/triton, onnxruntime_onnx)
    write_triton_repository(OUT/triton_python, onnxruntime in Python)
    deploy.json (summary)
"""
import copy
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from dinov3_mm.utils.image_ops import (DEFAULT_MAX_IMAGE_BYTES,
                                       DEFAULT_MAX_IMAGE_PIXELS)

from .export import (ExportError, ParityError, check_parity, detect_task,
                     export_onnx, preprocess_images, run_onnx)
from .serving_spec import serving_limits, serving_spec
from .triton_repo import server_args, write_triton_repository

#: Parity tolerances per precision (int8 is reported, never failed).
TOLERANCES = {
    'fp32': dict(atol=1e-4, min_cosine=0.9999),
    'fp16': dict(atol=2e-2, min_cosine=0.999),
    'int8': None,
}


def list_image_sources(sources: Sequence[str]) -> List[str]:
    """Image paths of every file, folder or list file in ``sources``."""
    from dinov3_mm.apis.inference import list_images
    return [path for source in sources for path in list_images(source)]


def test_set_samples(cfg, limit: int) -> List[dict]:
    """Up to ``limit`` samples (``img_path``, ``gt_label``) of the test set.

    Raises:
        FileNotFoundError: The config's test set cannot be read; the
            message says to pass parity images instead.
    """
    from dinov3_mm.registry import DATASETS
    dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    try:
        dataset = DATASETS.build(dataset_cfg)
        # samples are in file order: spread the picks over the classes
        step = max(1.0, len(dataset) / limit)
        infos = [dataset.get_data_info(int(i * step))
                 for i in range(min(limit, len(dataset)))]
    except Exception as exc:
        raise FileNotFoundError(
            f'Parity needs real images, but the test set of the config '
            f'(data_root={dataset_cfg.get("data_root")!r}) cannot be read: '
            f'{exc}. Pass --parity-images FILE_OR_FOLDER.') from exc
    if not infos:
        raise FileNotFoundError('The config\'s test set is empty; pass '
                                '--parity-images FILE_OR_FOLDER.')
    return [dict(img_path=i['img_path'], gt_label=i.get('gt_label'))
            for i in infos]


def _with_size(cfg, size: Sequence[int]):
    cfg = copy.deepcopy(cfg)
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'ResizeKeepRatioPad':
            step['size'] = tuple(size)
    return cfg


def _served_preprocessing_diff(paths: Sequence[str], spec: dict,
                               reference: torch.Tensor) -> float:
    from dinov3_mm.utils.image_ops import preprocess_encoded
    served = []
    for path in paths:
        with open(path, 'rb') as f:
            data = f.read()
        try:
            served.append(preprocess_encoded(data, spec)[0])
        except ValueError as exc:  # e.g. above the served size limits
            raise ValueError(f'Parity image {path}: {exc}') from exc
    return float(np.abs(np.stack(served) - reference.numpy()).max())


def _accuracy(onnx_path: str, model: nn.Module, inputs: torch.Tensor,
              labels: Sequence[int]) -> dict:
    from .export import DeployWrapper
    with torch.no_grad():
        ref = DeployWrapper(model, 'classification')(inputs).numpy()
    got = run_onnx(onnx_path, inputs)['probs']
    labels = np.asarray(labels)
    acc_ref = float((ref.argmax(1) == labels).mean())
    acc_onnx = float((got.argmax(1) == labels).mean())
    return dict(images=len(labels), accuracy_pytorch_fp32=acc_ref,
                accuracy_onnx=acc_onnx, accuracy_drop=acc_ref - acc_onnx)


def _report_markdown(summary: dict) -> str:
    lines = [
        f"# Deployment parity: {summary['task']}, {summary['precision']}",
        '', f"ONNX: `{osp.basename(summary['onnx'])}`; served "
        f"preprocessing vs test pipeline: max abs diff "
        f"{summary['preprocessing_max_abs_diff']:.3g}; result: "
        f"**{'PASS' if summary['passed'] else 'FAIL'}**", '',
        '| input | output | max abs diff | cosine | top-1 / mask agreement |',
        '|---|---|---|---|---|'
    ]
    for check in summary['checks']:
        for name, entry in check['outputs'].items():
            agree = entry.get('top1_agreement', entry.get('mask_agreement'))
            cells = [
                '-' if entry.get(k) is None else f'{entry[k]:.3g}'
                if k == 'max_abs_diff' else f'{entry[k]:.6f}'
                for k in ('max_abs_diff', 'cosine')
            ]
            lines.append(f"| {check['input_shape']} | {name} | {cells[0]} | "
                         f"{cells[1]} | "
                         f"{'-' if agree is None else f'{agree:.4f}'} |")
    if summary.get('fp32_nodes'):
        lines += ['', f"fp16: {len(summary['fp32_nodes'])} nodes kept in "
                  f"fp32 (overflow): " + ', '.join(
                      f'`{n}`' for n in summary['fp32_nodes'])]
    if summary.get('int8'):
        q = summary['int8']
        lines += ['', f"int8 on {q['images']} labelled images: accuracy "
                  f"{q['accuracy_pytorch_fp32']:.4f} (PyTorch fp32) -> "
                  f"{q['accuracy_onnx']:.4f} (drop {q['accuracy_drop']:.4f})"]
    lines += [''] + [f'- {f}' for f in summary['failures']]
    return '\n'.join(lines) + '\n'


def deploy(config,
           checkpoint: Optional[str],
           work_dir: str,
           task: Optional[str] = None,
           opset: int = 17,
           dynamic: Sequence[str] = ('batch', ),
           precision: str = 'fp32',
           max_batch_size: int = 8,
           instance_kind: str = 'cpu',
           parity_images: Optional[Sequence[str]] = None,
           num_parity_images: int = 8,
           extra_sizes: Optional[Sequence[Sequence[int]]] = None,
           name: str = 'dinov3',
           topk: int = 5,
           cfg_options: Optional[dict] = None,
           max_image_pixels: Optional[int] = DEFAULT_MAX_IMAGE_PIXELS,
           max_image_bytes: Optional[int] = DEFAULT_MAX_IMAGE_BYTES) -> dict:
    """Export, verify and package a trained model for serving.

    Args:
        config (str | Config): The training config.
        checkpoint (str, optional): Its checkpoint (random weights if None).
        work_dir (str): Output folder: ``model.onnx``, ``parity_report.json``
            / ``.md``, ``deploy.json``, ``triton/`` and ``triton_python/``.
        task (str, optional): ``'classification'``, ``'segmentation'`` or
            ``'features'``; detected when None or ``'auto'``.
        opset (int): ONNX opset. Defaults to 17.
        dynamic (sequence[str]): Dynamic axes: ``'batch'`` and/or ``'hw'``.
        precision (str): ``'fp32'``, ``'fp16'``, ``'bf16'`` (not supported
            by onnxruntime's CPU kernels: refused with a message) or
            ``'int8'``.
        max_batch_size (int): Triton ``max_batch_size`` (1 without a dynamic
            batch axis). Defaults to 8.
        instance_kind (str): ``'cpu'`` or ``'gpu'`` for the ONNX model.
        parity_images (sequence[str], optional): Files or folders; default:
            the config's test set.
        num_parity_images (int): Images used. Defaults to 8.
        extra_sizes (sequence, optional): More ``(h, w)`` checked with
            dynamic H/W; default: 1.5 times the input size.
        name (str): Triton ensemble name. Defaults to ``'dinov3'``.
        topk (int): Labels returned by the classification ensemble.
        cfg_options (dict, optional): Config overrides.
        max_image_pixels (int, optional): The served preprocessing refuses
            images whose header declares more pixels, before decoding
            (HTTP 400 / gRPC INVALID_ARGUMENT); None: no limit. Defaults
            to 40 MP.
        max_image_bytes (int, optional): ... and encoded images longer than
            this; None: no limit. Defaults to 32 MiB.

    Returns:
        dict: The summary written to ``deploy.json``.

    Raises:
        ExportError: The model or its test pipeline cannot be exported.
        ParityError: onnxruntime disagrees with PyTorch beyond the
            tolerance (the report is written first).
        ValueError: A limit is not a positive whole number, or a parity
            image is above a limit.
    """
    from mmengine.config import Config

    from dinov3_mm.apis import init_model
    unknown = set(dynamic) - {'batch', 'hw'}
    if unknown:
        raise ValueError(f'--dynamic takes batch and/or hw, got '
                         f'{sorted(unknown)}.')
    limits = serving_limits(max_image_pixels, max_image_bytes)
    if precision == 'bf16':
        raise ExportError(
            'bf16 ONNX models do not run on onnxruntime\'s CPU kernels here, '
            'so their parity cannot be checked; use fp16 (GPU) or int8 '
            '(CPU).')
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    config_name = config if isinstance(config, str) else 'the config'
    model = init_model(cfg, checkpoint, cfg_options=cfg_options)
    task = detect_task(model) if task in (None, 'auto') else task
    spec = serving_spec(model, task, config_name=config_name, **limits)
    os.makedirs(work_dir, exist_ok=True)

    if parity_images:
        paths = list_image_sources(parity_images)[:num_parity_images]
        samples = [dict(img_path=p, gt_label=None) for p in paths]
    else:
        samples = test_set_samples(model.cfg, num_parity_images)
    paths = [s['img_path'] for s in samples]
    inputs = preprocess_images(model, paths, model.cfg)
    prep_diff = _served_preprocessing_diff(paths, spec, inputs)

    onnx_path = osp.join(work_dir, 'model.onnx')
    dynamic_batch = 'batch' in dynamic
    exported = export_onnx(model, task, onnx_path,
                           input_size=spec['input_size'], opset=opset,
                           dynamic_batch=dynamic_batch, precision=precision,
                           dynamic_hw='hw' in dynamic, calibration=inputs)
    size = tuple(spec['input_size'])
    sizes = [size]
    if 'hw' in dynamic:
        divisor = int(getattr(model.data_preprocessor, 'pad_size_divisor', 1))
        sizes += [tuple(s) for s in (extra_sizes or [[
            max(divisor, round(1.5 * s / divisor) * divisor) for s in size
        ]])]
    batch_sizes = sorted({1, len(paths)}) if dynamic_batch else [1]
    tolerance = TOLERANCES[precision]
    checks, failures = [], []
    for hw in sizes:
        size_inputs = inputs if hw == size else preprocess_images(
            model, paths, _with_size(model.cfg, hw))
        for batch in batch_sizes:
            try:
                report = check_parity(
                    model, onnx_path, size_inputs[:batch], task,
                    raise_on_fail=False, **(tolerance or dict(
                        atol=float('inf'), min_cosine=-1.0)))
            except Exception as exc:  # onnxruntime refuses the shape
                raise ExportError(
                    f'The exported graph does not run at input '
                    f'{[batch, 3, *hw]}: {exc}. The model keeps per-size '
                    f'constants; export without --dynamic hw.') from exc
            checks.append(report)
            failures += [f'input {report["input_shape"]}: {f}'
                         for f in report['failures']]
    summary = dict(
        task=task, precision=precision, onnx=osp.abspath(onnx_path),
        opset=opset, dynamic=list(dynamic), input_size=list(size),
        tolerance=tolerance, preprocessing_max_abs_diff=prep_diff,
        checks=checks, fp32_nodes=exported['fp32_nodes'],
        failures=failures, passed=not failures, images=paths)
    labels = [s['gt_label'] for s in samples]
    if (precision == 'int8' and task == 'classification'
            and all(isinstance(v, (int, np.integer)) for v in labels)):
        summary['int8'] = _accuracy(onnx_path, model, inputs, labels)
    if prep_diff > 1e-4:
        failures.append(f'served preprocessing differs from the test '
                        f'pipeline by {prep_diff:.3g}')
        summary['passed'] = False
    report_path = osp.join(work_dir, 'parity_report.json')
    with open(report_path, 'w') as f:
        json.dump(summary, f, indent=2)
    with open(osp.join(work_dir, 'parity_report.md'), 'w') as f:
        f.write(_report_markdown(summary))
    if failures:
        raise ParityError(
            f'Deployment parity failed ({report_path}): '
            + '; '.join(failures), summary)

    num_outputs = _num_outputs(checks[0], task)
    repo_batch = max_batch_size if dynamic_batch else 1
    repos = {}
    for folder, backend in (('triton', 'onnxruntime'),
                            ('triton_python', 'python')):
        repo = osp.join(work_dir, folder)
        write_triton_repository(
            repo, onnx_path, spec, num_outputs, name=name, backend=backend,
            max_batch_size=repo_batch, instance_kind=instance_kind,
            topk=topk)
        repos[backend] = osp.abspath(repo)
    summary.update(repositories=repos, ensemble=name, spec=spec,
                   limits=limits,
                   server_args=server_args(limits, repo_batch))
    with open(osp.join(work_dir, 'deploy.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    return summary


def _num_outputs(check: dict, task: str) -> int:
    key = {'classification': 'probs', 'segmentation': 'logits',
           'features': 'embeddings'}[task]
    return int(check['outputs'][key]['shape'][1])


def load_summary(work_dir: str) -> Dict:
    """The ``deploy.json`` a previous :func:`deploy` wrote."""
    with open(osp.join(work_dir, 'deploy.json')) as f:
        return json.load(f)
