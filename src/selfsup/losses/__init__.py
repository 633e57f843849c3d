"""Loss functions of self-supervised learning, as pure functions of tensors.

No state and no distributed logic here: a method gathers tensors across processes before the
call (see `selfsup.distributed.gather_with_grad`), so each equation reads the same on one
process or many. One module per family; every loss is importable from `selfsup.losses`, its
formula and paper in its docstring, and tested against a plain reference in tests/.
"""

from selfsup.losses.contrastive import info_nce, nt_xent
from selfsup.losses.crossmodal import clip_loss

__all__ = ["info_nce", "nt_xent"]
__all__ += ["clip_loss"]
