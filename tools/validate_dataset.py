"""Check a classification dataset before training on it.

Prints counts per class and split, the imbalance ratio, unreadable or
truncated files, images that are too small, too dark, too bright or flat,
and exact duplicates across splits. Exits 1 when a failing rule has issues,
2 when the annotations cannot be read, 0 otherwise.

Examples::

    python tools/validate_dataset.py data/shapes
    python tools/validate_dataset.py data/labels.csv --max-imbalance 5 \\
        --fail-on unreadable,duplicates,too_small --json report.json
"""
import argparse
import json
import sys

from dinov3_mm.datasets.validation import (CHECKS, DEFAULT_FAIL_ON,
                                           ValidationRules, validate_dataset)


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments of the validation tool."""
    defaults = ValidationRules()
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('source', help='ImageFolder root, or a .csv / .json '
                        'annotation file')
    parser.add_argument('--max-imbalance', type=float,
                        default=defaults.max_imbalance,
                        help='largest allowed max/min class count ratio')
    parser.add_argument('--min-size', type=int, default=defaults.min_size,
                        help='smallest allowed image side in pixels')
    parser.add_argument('--dark-mean', type=float, default=defaults.dark_mean,
                        help='mean grey level below which an image is too '
                        'dark')
    parser.add_argument('--bright-mean', type=float,
                        default=defaults.bright_mean,
                        help='mean grey level above which an image is too '
                        'bright')
    parser.add_argument('--flat-std', type=float, default=defaults.flat_std,
                        help='grey-level std below which an image is flat')
    parser.add_argument('--fail-on', default=','.join(DEFAULT_FAIL_ON),
                        help=f'comma-separated checks that fail, from '
                        f'{",".join(CHECKS)}; or "all" / "none"')
    parser.add_argument('--workers', type=int, default=defaults.workers,
                        help='threads reading images')
    parser.add_argument('--json', help='also write the report to this file')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Run the checks; return the exit code."""
    args = parse_args(argv)
    try:
        rules = ValidationRules(
            max_imbalance=args.max_imbalance,
            min_size=args.min_size,
            dark_mean=args.dark_mean,
            bright_mean=args.bright_mean,
            flat_std=args.flat_std,
            fail_on=[c.strip() for c in args.fail_on.split(',') if c.strip()],
            workers=args.workers)
        report = validate_dataset(args.source, rules)
    except (ValueError, FileNotFoundError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print(report.render())
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(report.to_dict(), f, indent=2)
    return 0 if report.passed else 1


if __name__ == '__main__':
    sys.exit(main())
