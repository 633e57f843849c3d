"""Loss functions of self-supervised learning, as pure functions of tensors.

No state and no distributed logic here: a method gathers tensors across processes before the
call (see `selfsup.distributed.gather_with_grad`), so each equation reads the same on one
process or many. One module per family; every loss is importable from `selfsup.losses`, its
formula and paper in its docstring, and tested against a plain reference in tests/.
"""

from selfsup.losses.contrastive import info_nce, nt_xent
from selfsup.losses.reconstruction import normalise_patches, patch_mse, reconstruction_mse

__all__ = ["info_nce", "nt_xent"]
__all__ += ["normalise_patches", "patch_mse", "reconstruction_mse"]
