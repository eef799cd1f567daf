"""Classify an image, a folder of images or a text list of paths; write a CSV.

Example::

    python tools/infer.py CONFIG CHECKPOINT path/to/images --out preds.csv
"""
import argparse
import sys

import dinov3_mm  # noqa: F401  (allow-lists mmengine checkpoint classes)
from dinov3_mm.apis.inference import (inference_model, init_model,
                                      list_images, write_predictions_csv)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('source', help='image file, folder, or text file '
                        'with one image path per line')
    parser.add_argument('--out', default='predictions.csv')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch-size', type=int, default=8)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    paths = list_images(args.source)
    model = init_model(args.config, args.checkpoint, device=args.device)
    predictions = inference_model(model, paths, batch_size=args.batch_size)
    classes = model.dataset_meta.get('classes')
    write_predictions_csv(paths, predictions, args.out, classes)
    print(f'Wrote {len(paths)} predictions to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
