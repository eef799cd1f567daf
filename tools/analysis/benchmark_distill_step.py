"""Images/s of one distillation step vs an SSL continuation step of the same student.

Both steps are timed in one process, alternating rounds (each kind's fastest
round counts), on the CPU:

* distillation: DINOv3Distiller, frozen teacher forward (no grad) + student
  forward/backward with the global and dense cosine terms + AdamW, one
  ``--size`` image per sample;
* SSL continuation: DINOv3SSL's full step on the student arch (2 global
  crops of ``--size`` + ``--local-crops`` local crops, DINO/iBOT/KoLeo/Gram,
  AdamW, teacher EMA), as ``benchmark_ssl_step.py`` measures it.

Example::

    python tools/analysis/benchmark_distill_step.py --teacher base \
        --student small --batch-size 8 --markdown
"""
import argparse
import json
import sys

from benchmarks.common import rows_to_markdown
from benchmarks.distill_step import benchmark_distill_step


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--teacher', default='base', help='teacher ViT arch')
    parser.add_argument('--student', default='small', help='student ViT arch')
    parser.add_argument('--dtype', default='fp32', choices=['fp32', 'bf16'])
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--local-crops', type=int, default=8)
    parser.add_argument('--local-size', type=int, default=96)
    parser.add_argument('--prototypes', type=int, default=4096,
                        help='DINO/iBOT prototypes of the SSL step (4096 as '
                        'in configs/ssl/vits16_continue_shapes.py)')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--iters', type=int, default=2)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--markdown', action='store_true')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    row = benchmark_distill_step(args)
    if args.markdown:
        print(rows_to_markdown([row], list(row)))
    else:
        print(json.dumps(row))
    return 0


if __name__ == '__main__':
    sys.exit(main())
