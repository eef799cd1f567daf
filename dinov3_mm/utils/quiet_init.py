"""``init_weights`` outside a Runner without mmengine's per-parameter dump."""
import logging
import re

from mmengine.logging import MMLogger
from torch import nn

# mmengine logs one record per parameter ("\n<name> - torch.Size([...]):
# <how it was initialised>") when the current logger has no log file
_PARAMETER_DUMP = re.compile(r'^\n\S+ - torch\.Size\(')


class _ParameterDumpFilter(logging.Filter):

    def filter(self, record: logging.LogRecord) -> bool:
        return not _PARAMETER_DUMP.match(record.getMessage())


def init_weights_quietly(model: nn.Module) -> None:
    """``model.init_weights()`` with the parameter dump left out.

    Inside a Runner the dump goes to the log file; outside one (inference,
    export, benchmarks) mmengine prints hundreds of console lines. Other
    records (e.g. "no pretrained checkpoint given") still show.
    """
    logger = MMLogger.get_current_instance()
    dump_filter = _ParameterDumpFilter()
    logger.addFilter(dump_filter)
    try:
        model.init_weights()
    finally:
        logger.removeFilter(dump_filter)
