"""Summaries of a corruption sweep: mean performance, relative robustness, mCE.

``table[corruption][severity]`` holds a performance in percent (top-1
accuracy, or mIoU for segmentation); the error is ``100 - performance``.

* mean performance under corruption: the mean over all corruptions and
  severities (mPC, Michaelis et al. 2019);
* relative robustness: mPC / clean performance;
* corruption error of corruption ``c`` against a baseline model (Hendrycks &
  Dietterich 2019): ``CE_c = sum_s E_{s,c} / sum_s E^baseline_{s,c}`` (in %);
  mCE is the mean of ``CE_c`` over the corruptions both sweeps share.
"""
from typing import Dict, Optional

Table = Dict[str, Dict[int, float]]


def corruption_errors(table: Table, baseline: Table) -> Dict[str, float]:
    """``CE_c`` in percent for every corruption in both tables.

    Raises:
        ValueError: No corruption in common, or a baseline with no error.
    """
    shared = [c for c in table if c in baseline]
    if not shared:
        raise ValueError('The baseline sweep has none of the corruptions '
                         f'of this one ({", ".join(table)}).')
    errors = {}
    for name in shared:
        severities = [s for s in table[name] if s in baseline[name]]
        ours = sum(100 - table[name][s] for s in severities)
        base = sum(100 - baseline[name][s] for s in severities)
        if base <= 0:
            raise ValueError(f'The baseline makes no error on {name}; its '
                             'corruption error is undefined.')
        errors[name] = 100 * ours / base
    return errors


def summarise_sweep(clean: float, table: Table,
                    baseline: Optional[Table] = None) -> dict:
    """Per-corruption means, mPC, relative robustness (and CE, mCE)."""
    per_corruption = {c: sum(v.values()) / len(v) for c, v in table.items()}
    values = [v for row in table.values() for v in row.values()]
    mean = sum(values) / len(values)
    summary = dict(clean=clean, per_corruption=per_corruption,
                   mean_corrupted=mean,
                   relative_robustness=mean / clean if clean else float(
                       'nan'))
    if baseline is not None:
        errors = corruption_errors(table, baseline)
        summary.update(corruption_errors=errors,
                       mce=sum(errors.values()) / len(errors))
    return summary
