"""Write the synthetic multispectral land-cover GeoTIFF set.

Examples::

    python projects/satellite/tools/generate_geotiff_dataset.py \\
        data/satellite_landcover
    python projects/satellite/tools/generate_geotiff_dataset.py /tmp/geo \\
        --train 8 --val 2 --tile-size 64 --bands 4
"""
import argparse
import json
import os.path as osp
import sys

from dinov3_mm_satellite.synthetic import generate_geotiff_dataset


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root', nargs='?', default='data/satellite_landcover',
                        help='output folder (default data/satellite_landcover)')
    parser.add_argument('--train', type=int, default=32,
                        help='training tiles (default 32)')
    parser.add_argument('--val', type=int, default=8,
                        help='validation tiles (default 8)')
    parser.add_argument('--tile-size', type=int, default=256,
                        help='tile side in pixels (default 256)')
    parser.add_argument('--bands', type=int, default=6,
                        help='bands, 1-6: B2 B3 B4 B8 B11 B12 (default 6)')
    parser.add_argument('--epsg', type=int, default=32633,
                        help='projected CRS (default 32633, UTM 33N)')
    parser.add_argument('--band-layout', choices=['last', 'first'],
                        default='last',
                        help='store (H, W, B) pixel-interleaved or '
                        '(B, H, W) band-sequential (default last)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--force', action='store_true',
                        help='rewrite an existing dataset')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if osp.exists(osp.join(args.root, 'dataset.json')) and not args.force:
        print(f'{args.root} exists; keeping it (--force rewrites it)')
        return 0
    meta = generate_geotiff_dataset(
        args.root, num_train=args.train, num_val=args.val,
        tile_size=args.tile_size, num_bands=args.bands, seed=args.seed,
        epsg=args.epsg, band_layout=args.band_layout)
    print(json.dumps({k: meta[k] for k in ('root', 'classes', 'band_names',
                                           'epsg', 'band_stats')}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
