"""Print a config as the tools run it: ``_base_`` files merged,
``--cfg-options`` applied and ``default_scope`` set.

Examples::

    python tools/misc/print_config.py configs/demo/convnext_shapes.py
    python tools/misc/print_config.py CONFIG --cfg-options train_cfg.max_epochs=5
    python tools/misc/print_config.py CONFIG --out merged_config.py
"""
import argparse

from mmengine.config import Config

from dinov3_mm.engine.cli_options import CfgOptionsAction
from dinov3_mm.utils.cli import (UserError, add_debug_argument, cli_main,
                                 require_config)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Print the merged config')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=CfgOptionsAction,
        help='override config entries, e.g. train_cfg.max_epochs=5')
    parser.add_argument('--out',
                        help='also save the merged config to this .py file')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def merged_config(path: str, cfg_options=None) -> Config:
    """``path`` loaded with its bases, ``cfg_options`` merged and
    ``default_scope`` defaulting to ``'dinov3_mm'``, as tools/train.py and
    tools/test.py see it."""
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.setdefault('default_scope', 'dinov3_mm')
    return cfg


def main(argv=None) -> None:
    args = parse_args(argv)
    require_config(args.config)
    cfg = merged_config(args.config, args.cfg_options)
    print(f'Config (path: {args.config}):\n{cfg.pretty_text}')
    if args.out:
        if not args.out.endswith('.py'):
            raise UserError(f'--out {args.out}: write the config as a .py '
                            'file.')
        cfg.dump(args.out)
        print(f'Saved the merged config to {args.out}')


if __name__ == '__main__':
    cli_main(main)
