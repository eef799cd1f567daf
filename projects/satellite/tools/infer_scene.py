"""Segment a large GeoTIFF scene with sliding windows into a GeoTIFF mask.

The class mask (and the optional confidence raster) keeps the scene's CRS
and geotransform. Examples::

    python projects/satellite/tools/infer_scene.py \\
        configs/satellite/vits16_unet_multispectral.py \\
        work_dirs/vits16_unet_multispectral/epoch_40.pth \\
        data/satellite_landcover/scenes/scene.tif out/scene_mask.tif \\
        --tile-size 256 --overlap 64 --confidence out/scene_confidence.tif

The tool takes one scene: its header is read before the model is loaded,
so a missing or unreadable scene stops the run at once with a message
naming the file (no ``--skip-unreadable``: there is nothing else to do).
A progress bar over the batches of windows shows on a terminal or with
``DINOV3_MM_PROGRESS=1``.
"""
import argparse
import json
import sys

import dinov3_mm  # noqa: F401  (registries, safe checkpoint loading)
from dinov3_mm.engine import CfgOptionsAction

from dinov3_mm.apis import CheckpointError, init_model
from dinov3_mm_satellite.geotiff import read_info
from dinov3_mm_satellite.tiled_inference import BLEND_MODES, infer_scene


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='training config of the model')
    parser.add_argument('checkpoint', help='checkpoint (.pth) to load')
    parser.add_argument('scene', help='input GeoTIFF scene')
    parser.add_argument('out', help='output class-mask GeoTIFF')
    parser.add_argument('--tile-size', type=int, default=512,
                        help='window side in pixels (default 512)')
    parser.add_argument('--overlap', type=int, default=128,
                        help='pixels shared by neighbouring windows '
                        '(default 128)')
    parser.add_argument('--batch-size', type=int, default=4,
                        help='windows per forward pass (default 4)')
    parser.add_argument('--blend', choices=BLEND_MODES, default='gaussian',
                        help='weighting of overlapping logits')
    parser.add_argument('--confidence', default=None,
                        help='also write the float32 confidence GeoTIFF here')
    parser.add_argument('--nodata-label', type=int, default=None,
                        help='label for the scene\'s no-data pixels')
    parser.add_argument('--allow-no-georef', action='store_true',
                        help='accept a scene without georeferencing (the '
                        'mask is then a plain TIFF)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='config overrides')
    parser.add_argument('--debug', action='store_true',
                        help='show the traceback of an error')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        # a wrong checkpoint, or a scene that cannot be read or used (the
        # GeoTIFF errors are ValueErrors naming the file)
        if args.debug:
            raise
        print(f'error: {exc}', file=sys.stderr)
        return 1
    except OSError as exc:  # the scene's data fails to read part-way
        if args.debug:
            raise
        print(f'error: cannot read scene {args.scene}: {exc}',
              file=sys.stderr)
        return 1


def run(args) -> int:
    read_info(args.scene)  # an unreadable scene fails before the model
    model = init_model(args.config, args.checkpoint, device=args.device,
                       cfg_options=args.cfg_options)
    result = infer_scene(
        model, args.scene, args.out, tile_size=args.tile_size,
        overlap=args.overlap, batch_size=args.batch_size, blend=args.blend,
        confidence_out=args.confidence,
        require_georef=not args.allow_no_georef,
        nodata_label=args.nodata_label)
    print(json.dumps(result.__dict__))
    return 0


if __name__ == '__main__':
    sys.exit(main())
