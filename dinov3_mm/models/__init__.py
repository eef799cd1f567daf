"""Models: backbones, necks, heads, losses and top-level models."""
from .backbones import *  # noqa: F401,F403
from .classifiers import *  # noqa: F401,F403
from .data_preprocessors import ClsDataPreprocessor, CutMix, Mixup  # noqa: F401
from .heads import *  # noqa: F401,F403
from .lora import apply_lora, merge_lora  # noqa: F401
from .losses import *  # noqa: F401,F403
from .seg_data_preprocessor import SegDataPreprocessor  # noqa: F401
from .segmentors import *  # noqa: F401,F403
from .ssl import *  # noqa: F401,F403
from .ssl_data_preprocessor import SSLDataPreprocessor  # noqa: F401
from .necks import *  # noqa: F401,F403
