"""selfsup: learn encoders from unlabeled data, evaluate them, and embed with them.

import selfsup
result = selfsup.pretrain(data__source="digits", train__epochs=20)
encoder = selfsup.load(result.run_dir)
features = selfsup.embed(encoder, images_uint8)
"""

from selfsup.api import analogy, embed, evaluate, make_config, pretrain, run_config
from selfsup.config import Config
from selfsup.errors import SelfsupError
from selfsup.export import load

__version__ = "0.1.0"

__all__ = [
    "Config",
    "SelfsupError",
    "analogy",
    "embed",
    "evaluate",
    "load",
    "make_config",
    "pretrain",
    "run_config",
]
