"""init_model without a checkpoint: no per-parameter dump on the console."""
import logging

from mmengine.logging import MMLogger

from dinov3_mm.apis import init_model


class _Records(logging.Handler):

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_init_model_without_checkpoint_skips_the_parameter_dump(repo_root):
    logger = MMLogger.get_current_instance()
    records = _Records()
    logger.addHandler(records)
    try:
        init_model(str(repo_root / 'configs/classification/'
                       'vits16_linear_probe_shapes.py'))
    finally:
        logger.removeHandler(records)
    dumps = [m for m in records.messages if 'torch.Size(' in m]
    assert dumps == []
    assert any('random initialisation' in m for m in records.messages)
    # the filter is gone afterwards: the same dump call logs again
    logger.addHandler(records)
    try:
        logger.info('\nbackbone.weight - torch.Size([2]): \nsome init \n ')
    finally:
        logger.removeHandler(records)
    assert records.messages[-1].startswith('\nbackbone.weight')
