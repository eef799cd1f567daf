"""From a config and checkpoint to a verified ONNX file and Triton repositories.

Call graph of :func:`deploy` (what ``tools/deploy.py`` runs), one step per
function::

    _check_options                  --dynamic, size limits, precision
    check_ood_threshold             --ood-threshold: a deployable score
    _build_model                    init_model(config, checkpoint)
    serving_spec                    task (auto) -> served preprocessing
    _parity_inputs                  the config's test set or --parity-images
    ├── served preprocessing (image_ops) == test pipeline + preprocessor?
    export_onnx                     precision, dynamic axes, fp16 overflow
                                    scan on the images
    _check_parity_at_sizes          every size (input size; more with
                                    dynamic H/W) and batch size
    _parity_summary                 int8: accuracy drop against the labels
    _write_parity_report            parity_report.json / .md (written
                                    before failing with ParityError)
    _write_repositories             OUT/triton (onnxruntime_onnx backend),
                                    OUT/triton_python (onnxruntime in Python)
    _write_summary                  deploy.json
"""
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from dinov3_mm.apis.ood import DEPLOYABLE_SCORES
from dinov3_mm.utils.image_ops import (DEFAULT_MAX_IMAGE_BYTES,
                                       DEFAULT_MAX_IMAGE_PIXELS)
from dinov3_mm.utils.progress import track

from .errors import ExportError, ParityError
from .export_wrapper import detect_task
from .onnx_export import export_onnx
from .parity import accuracy_drop, check_parity
from .parity_inputs import (config_at_size, list_image_sources,
                            preprocess_images, served_preprocessing_diff,
                            test_set_samples)
from .serving_spec import serving_limits, serving_spec
from .triton_repo import server_args, write_triton_repository

#: Parity tolerances per precision (int8 is reported, never failed).
TOLERANCES = {
    'fp32': dict(atol=1e-4, min_cosine=0.9999, min_iou=0.99),
    'fp16': dict(atol=2e-2, min_cosine=0.999, min_iou=0.95),
    'int8': None,
}


def _report_markdown(summary: dict) -> str:
    lines = [
        f"# Deployment parity: {summary['task']}, {summary['precision']}",
        '', f"ONNX: `{osp.basename(summary['onnx'])}`; served "
        f"preprocessing vs test pipeline: max abs diff "
        f"{summary['preprocessing_max_abs_diff']:.3g}; result: "
        f"**{'PASS' if summary['passed'] else 'FAIL'}**", '',
        '| input | output | max abs diff | cosine | top-1 / mask / label '
        'agreement | mean IoU |',
        '|---|---|---|---|---|---|'
    ]
    for check in summary['checks']:
        for name, entry in check['outputs'].items():
            agree = entry.get('top1_agreement', entry.get(
                'mask_agreement', entry.get('agreement')))
            iou = entry.get('mean_iou')
            cells = [
                '-' if entry.get(k) is None else f'{entry[k]:.3g}'
                if k == 'max_abs_diff' else f'{entry[k]:.6f}'
                for k in ('max_abs_diff', 'cosine')
            ]
            lines.append(f"| {check['input_shape']} | {name} | {cells[0]} | "
                         f"{cells[1]} | "
                         f"{'-' if agree is None else f'{agree:.4f}'} | "
                         f"{'-' if iou is None else f'{iou:.4f}'} |")
        speed = check.get('speed')
        if speed:
            lines.append(
                f"| {check['input_shape']} | speed (batch {speed['batch']}) "
                f"| eager {speed['eager_s'] * 1000:.1f} ms | onnxruntime "
                f"{speed['onnxruntime_s'] * 1000:.1f} ms | ratio "
                f"{speed['ratio']:.2f} | - |")
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
           ood_threshold: Optional[dict] = None,
           cfg_options: Optional[dict] = None,
           max_image_pixels: Optional[int] = DEFAULT_MAX_IMAGE_PIXELS,
           max_image_bytes: Optional[int] = DEFAULT_MAX_IMAGE_BYTES,
           score_threshold: Optional[float] = None) -> dict:
    """Export, verify and package a trained model for serving.

    Args:
        config (str | Config): The training config.
        checkpoint (str, optional): Its checkpoint (random weights if None).
        work_dir (str): Output folder: ``model.onnx``, ``parity_report.json``
            / ``.md``, ``deploy.json``, ``triton/`` and ``triton_python/``.
        task (str, optional): ``'classification'``, ``'segmentation'``,
            ``'detection'`` or ``'features'``; detected when None or
            ``'auto'``.
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
        ood_threshold (dict, optional): ``dict(score='msp', threshold=t)``
            (``tools/test_ood.py --write-threshold``): the classification
            ensemble also returns ``OOD`` (BOOL ``[1]``), true when the
            image's top probability is below ``t``.
        cfg_options (dict, optional): Config overrides.
        max_image_pixels (int, optional): The served preprocessing refuses
            images whose header declares more pixels, before decoding
            (HTTP 400 / gRPC INVALID_ARGUMENT); None: no limit. Defaults
            to 40 MP.
        max_image_bytes (int, optional): ... and encoded images longer than
            this; None: no limit. Defaults to 32 MiB.
        score_threshold (float, optional): Detection: the served
            detections score at least this; default: the model's
            ``test_cfg['score_thr']``, else 0.3. The ONNX file itself
            returns the top ``test_cfg['num_select']`` unthresholded.

    Returns:
        dict: The summary written to ``deploy.json``.

    Raises:
        ExportError: The model or its test pipeline cannot be exported.
        ParityError: onnxruntime disagrees with PyTorch beyond the
            tolerance (the report is written first).
        ValueError: A limit is not a positive whole number, or a parity
            image is above a limit.
    """
    _check_options(dynamic, precision)
    ood = check_ood_threshold(ood_threshold)
    limits = serving_limits(max_image_pixels, max_image_bytes)
    _check_precision(precision)
    model = _build_model(config, checkpoint, cfg_options)
    task = detect_task(model) if task in (None, 'auto') else task
    if ood and task != 'classification':
        raise ValueError(f'An OOD threshold applies to classifiers; this '
                         f'model serves {task}.')
    if ood and getattr(getattr(model, 'head', None), 'multi_label', False):
        raise ValueError('An OOD threshold on the top probability needs a '
                         'softmax classifier; this one is multi-label '
                         '(sigmoid scores).')
    if task == 'detection' and 'hw' in dynamic:
        raise ValueError('A detector is exported at one input size (its '
                         'anchors and query selection are fixed in the '
                         'graph); drop hw from --dynamic.')
    config_name = config if isinstance(config, str) else 'the config'
    spec = serving_spec(model, task, config_name=config_name,
                        score_threshold=score_threshold, **limits)
    os.makedirs(work_dir, exist_ok=True)
    samples, inputs = _parity_inputs(model, parity_images, num_parity_images)
    paths = [s['img_path'] for s in samples]
    prep_diff = served_preprocessing_diff(paths, spec, inputs)

    onnx_path = osp.join(work_dir, 'model.onnx')
    exported = export_onnx(model, task, onnx_path,
                           input_size=spec['input_size'], opset=opset,
                           dynamic_batch='batch' in dynamic,
                           precision=precision, dynamic_hw='hw' in dynamic,
                           calibration=inputs)
    checks, failures = _check_parity_at_sizes(
        model, onnx_path, task, inputs, paths, tuple(spec['input_size']),
        dynamic, precision, extra_sizes)
    summary = _parity_summary(model, onnx_path, task, spec, precision, opset,
                              dynamic, inputs, samples, prep_diff, checks,
                              failures, exported['fp32_nodes'])
    _write_parity_report(summary, work_dir)

    repo_batch = max_batch_size if 'batch' in dynamic else 1
    num_outputs = (int(model.num_classes) if task == 'detection' else
                   _num_outputs(checks[0], task))
    repos = _write_repositories(work_dir, onnx_path, spec, num_outputs, name,
                                repo_batch, instance_kind, topk, ood)
    summary.update(repositories=repos, ensemble=name, spec=spec,
                   limits=limits, ood=ood,
                   server_args=server_args(limits, repo_batch))
    _write_summary(summary, work_dir)
    return summary


def check_ood_threshold(entry: Optional[dict]) -> Optional[dict]:
    """``dict(score='msp', threshold=float)`` or None; else a ValueError.

    Only scores the served probabilities give
    (:data:`~dinov3_mm.apis.ood.DEPLOYABLE_SCORES`: their maximum, ``msp``)
    can be deployed: ``max_logit`` and ``energy`` need the logits, whose
    offset the softmax drops, and ``knn`` / ``mahalanobis`` the features.
    """
    if entry is None:
        return None
    score, threshold = entry.get('score'), entry.get('threshold')
    if score not in DEPLOYABLE_SCORES or isinstance(threshold, bool) or \
            not isinstance(threshold, (int, float)) or \
            not math.isfinite(threshold):
        raise ValueError(
            f'OOD threshold {entry!r}: a served classifier flags OOD images '
            "by their top probability; expected {'score': 'msp', "
            "'threshold': <number>} as tools/test_ood.py --write-threshold "
            'msp writes it.')
    return dict(score=score, threshold=float(threshold))


def _check_options(dynamic: Sequence[str], precision: str) -> None:
    """Refuse unknown dynamic axes."""
    unknown = set(dynamic) - {'batch', 'hw'}
    if unknown:
        raise ValueError(f'--dynamic takes batch and/or hw, got '
                         f'{sorted(unknown)}.')


def _check_precision(precision: str) -> None:
    """Refuse bf16, whose parity cannot be checked on the CPU."""
    if precision == 'bf16':
        raise ExportError(
            'bf16 ONNX models do not run on onnxruntime\'s CPU kernels here, '
            'so their parity cannot be checked; use fp16 (GPU) or int8 '
            '(CPU).')


def _build_model(config, checkpoint: Optional[str],
                 cfg_options: Optional[dict]) -> nn.Module:
    """The model of ``config`` (path or Config) with ``checkpoint`` loaded."""
    from mmengine.config import Config

    from dinov3_mm.apis import init_model
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    return init_model(cfg, checkpoint, cfg_options=cfg_options)


def _parity_inputs(model: nn.Module, parity_images: Optional[Sequence[str]],
                   num_parity_images: int) -> Tuple[List[dict], torch.Tensor]:
    """The parity samples (``img_path``, ``gt_label``) and their batch."""
    if parity_images:
        paths = list_image_sources(parity_images)[:num_parity_images]
        samples = [dict(img_path=p, gt_label=None) for p in paths]
    else:
        samples = test_set_samples(model.cfg, num_parity_images)
    paths = [s['img_path'] for s in samples]
    return samples, preprocess_images(model, paths, model.cfg)


def _check_parity_at_sizes(
        model: nn.Module, onnx_path: str, task: str, inputs: torch.Tensor,
        paths: Sequence[str], size: Tuple[int, int], dynamic: Sequence[str],
        precision: str, extra_sizes: Optional[Sequence[Sequence[int]]]
) -> Tuple[List[dict], List[str]]:
    """Parity reports at every checked size and batch, and the failures.

    The input size is always checked; with a dynamic H/W ``extra_sizes``
    too (default: 1.5 times the input size), and with a dynamic batch
    batches of 1 and of every image.

    Raises:
        ExportError: onnxruntime refuses one of the shapes.
    """
    sizes = [size]
    if 'hw' in dynamic:
        divisor = int(getattr(model.data_preprocessor, 'pad_size_divisor', 1))
        sizes += [tuple(s) for s in (extra_sizes or [[
            max(divisor, round(1.5 * s / divisor) * divisor) for s in size
        ]])]
    batch_sizes = sorted({1, len(paths)}) if 'batch' in dynamic else [1]
    tolerance = TOLERANCES[precision]
    checks, failures = [], []
    for hw in track(sizes, 'Parity: ONNX vs PyTorch', unit='size'):
        size_inputs = inputs if hw == size else preprocess_images(
            model, paths, config_at_size(model.cfg, hw))
        for batch in batch_sizes:
            try:
                report = check_parity(
                    model, onnx_path, size_inputs[:batch], task,
                    raise_on_fail=False, **(tolerance or dict(
                        atol=float('inf'), min_cosine=-1.0, min_agreement=0.0,
                        min_iou=None)))
            except Exception as exc:  # onnxruntime refuses the shape
                raise ExportError(
                    f'The exported graph does not run at input '
                    f'{[batch, 3, *hw]}: {exc}. The model keeps per-size '
                    f'constants; export without --dynamic hw.') from exc
            checks.append(report)
            failures += [f'input {report["input_shape"]}: {f}'
                         for f in report['failures']]
    return checks, failures


def _parity_summary(model: nn.Module, onnx_path: str, task: str, spec: dict,
                    precision: str, opset: int, dynamic: Sequence[str],
                    inputs: torch.Tensor, samples: Sequence[dict],
                    prep_diff: float, checks: List[dict],
                    failures: List[str], fp32_nodes: List[str]) -> dict:
    """The summary of the checks: tolerances, reports, failures, verdict.

    ``failures`` gains the served-preprocessing failure, if any.
    """
    paths = [s['img_path'] for s in samples]
    summary = dict(
        task=task, precision=precision, onnx=osp.abspath(onnx_path),
        opset=opset, dynamic=list(dynamic),
        input_size=list(spec['input_size']),
        tolerance=TOLERANCES[precision],
        preprocessing_max_abs_diff=prep_diff, checks=checks,
        fp32_nodes=fp32_nodes, failures=failures, passed=not failures,
        images=paths)
    labels = [s['gt_label'] for s in samples]
    if (precision == 'int8' and task == 'classification'
            and all(isinstance(v, (int, np.integer)) for v in labels)):
        summary['int8'] = accuracy_drop(onnx_path, model, inputs, labels)
    if prep_diff > 1e-4:
        failures.append(f'served preprocessing differs from the test '
                        f'pipeline by {prep_diff:.3g}')
        summary['passed'] = False
    return summary


def _write_parity_report(summary: dict, work_dir: str) -> None:
    """``parity_report.json`` / ``.md``; then fail if a check failed.

    Raises:
        ParityError: The summary lists failures.
    """
    report_path = osp.join(work_dir, 'parity_report.json')
    with open(report_path, 'w') as f:
        json.dump(summary, f, indent=2)
    with open(osp.join(work_dir, 'parity_report.md'), 'w') as f:
        f.write(_report_markdown(summary))
    if summary['failures']:
        raise ParityError(
            f'Deployment parity failed ({report_path}): '
            + '; '.join(summary['failures']), summary)


def _write_repositories(work_dir: str, onnx_path: str, spec: dict,
                        num_outputs: int, name: str, max_batch_size: int,
                        instance_kind: str, topk: int,
                        ood: Optional[dict] = None) -> Dict[str, str]:
    """The two Triton repositories; their absolute paths by backend."""
    repos = {}
    for folder, backend in (('triton', 'onnxruntime'),
                            ('triton_python', 'python')):
        repo = osp.join(work_dir, folder)
        write_triton_repository(
            repo, onnx_path, spec, num_outputs, name=name, backend=backend,
            max_batch_size=max_batch_size, instance_kind=instance_kind,
            topk=topk, ood=ood)
        repos[backend] = osp.abspath(repo)
    return repos


def _write_summary(summary: dict, work_dir: str) -> None:
    """``deploy.json``."""
    with open(osp.join(work_dir, 'deploy.json'), 'w') as f:
        json.dump(summary, f, indent=2)


def _num_outputs(check: dict, task: str) -> int:
    key = {'classification': 'probs', 'segmentation': 'logits',
           'features': 'embeddings'}[task]
    return int(check['outputs'][key]['shape'][1])


def load_summary(work_dir: str) -> Dict:
    """The ``deploy.json`` a previous :func:`deploy` wrote."""
    with open(osp.join(work_dir, 'deploy.json')) as f:
        return json.load(f)
