r"""Write a small synthetic MRI-like head volume set (NIfTI images + labels).

    python projects/medical/tools/generate_mri_volumes.py \
        --out data/mri_volumes

gives ``<out>/images/{train,val}/case_XXX.nii.gz`` (int16) and
``<out>/labels/{train,val}/case_XXX.nii.gz`` (uint8: 0 background, 1 brain,
2 csf, 3 lesion), the layout of configs/medical/vitb16_unet_mri.py.
"""
import argparse
import sys

from dinov3_mm_medical.synthetic import (DEFAULT_SHAPE, DEFAULT_SPACING,
                                         MRI_CLASSES, write_mri_volumes)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    parser.add_argument('--out', default='data/mri_volumes',
                        help='output folder (default data/mri_volumes)')
    parser.add_argument('--num-train', type=int, default=6,
                        help='training cases (default 6)')
    parser.add_argument('--num-val', type=int, default=2,
                        help='validation cases (default 2)')
    parser.add_argument('--shape', type=int, nargs=3, default=DEFAULT_SHAPE,
                        metavar=('I', 'J', 'K'),
                        help='voxels per case; slices are cut along K '
                        f'(default {" ".join(map(str, DEFAULT_SHAPE))})')
    parser.add_argument('--spacing', type=float, nargs=3,
                        default=DEFAULT_SPACING, metavar=('SI', 'SJ', 'SK'),
                        help='voxel size in mm (default '
                        f'{" ".join(map(str, DEFAULT_SPACING))})')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    written = write_mri_volumes(args.out, args.num_train, args.num_val,
                                args.shape, args.spacing, args.seed)
    print(f'Wrote {len(written["train"])} training and '
          f'{len(written["val"])} validation volumes to {args.out} '
          f'(classes: {", ".join(MRI_CLASSES)})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
