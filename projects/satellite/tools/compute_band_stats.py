"""Per-band mean and std of GeoTIFF tiles, for NormalizeBands.

Prints the values (after ``--scale`` and ``--clip``) to paste into a config
as ``mean``/``std``, or the non-RGB part as ``extra_mean``/``extra_std``.
Example::

    python projects/satellite/tools/compute_band_stats.py \\
        data/satellite_landcover/img_dir/train --scale 1e-4 \\
        --bands B4 B3 B2 B8 B11 B12
"""
import argparse
import glob
import json
import os.path as osp
import sys

from dinov3_mm_satellite.bands import compute_band_statistics


def _band(value: str):
    return int(value) if value.lstrip('-').isdigit() else value


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('source', help='a folder of .tif files or one file')
    parser.add_argument('--bands', nargs='+', type=_band, default=None,
                        help='band indices or names (default all)')
    parser.add_argument('--scale', type=float, default=1.0,
                        help='multiplier applied first (e.g. 1e-4)')
    parser.add_argument('--clip', type=float, nargs=2, default=None,
                        help='clip range after scaling, e.g. 0 1')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    paths = ([args.source] if osp.isfile(args.source) else sorted(
        glob.glob(osp.join(args.source, '**', '*.tif'), recursive=True)))
    if not paths:
        print(f'No .tif file in {args.source}', file=sys.stderr)
        return 1
    stats = compute_band_statistics(paths, args.bands, args.scale,
                                    tuple(args.clip) if args.clip else None)
    print(json.dumps(dict(stats, files=len(paths))))
    return 0


if __name__ == '__main__':
    sys.exit(main())
