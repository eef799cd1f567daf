"""``--cfg-options`` parsing that turns a malformed item into a usage error."""
import re
from argparse import ArgumentParser, Namespace
from typing import Any, Optional, Sequence, Union

from mmengine.config import DictAction

# dotted names; a number picks a list item (``pipeline.1.size=224``)
_KEY = re.compile(r'^[A-Za-z_]\w*(\.\w+)*$')
EXAMPLE = 'train_cfg.max_epochs=5'


class CfgOptionsAction(DictAction):
    """mmengine's ``DictAction`` whose errors name the item and exit with 2.

    Each item must be ``KEY=VALUE`` with a dotted ``KEY``; otherwise
    ``parser.error`` prints the usage and the item, and the program exits
    with status 2 instead of raising a ``ValueError`` traceback.
    """

    def __call__(self,
                 parser: ArgumentParser,
                 namespace: Namespace,
                 values: Union[str, Sequence[Any], None],
                 option_string: Optional[str] = None) -> None:
        items = [values] if isinstance(values, str) else list(values or [])
        option = option_string or '--cfg-options'
        for item in items:
            problem = malformed_item(item)
            if problem:
                parser.error(f"argument {option}: '{item}' {problem}; "
                             f'write each item as KEY=VALUE, e.g. {EXAMPLE}')
            try:
                super().__call__(parser, namespace, [item], option_string)
            except (ValueError, AssertionError, IndexError) as exc:
                parser.error(f"argument {option}: cannot read the value of "
                             f"'{item}' ({exc}); write KEY=VALUE, e.g. "
                             f'{EXAMPLE} or KEY=[a,b]')
        if values is None:
            super().__call__(parser, namespace, None, option_string)


def malformed_item(item: str) -> Optional[str]:
    """Why ``item`` is not a ``KEY=VALUE`` override, or None if it is one."""
    key, sep, _ = item.partition('=')
    if not sep:
        return 'has no "="'
    if not key:
        return 'has no key before "="'
    if not _KEY.match(key):
        return f"has a key '{key}' that is not a dotted name"
    return None
