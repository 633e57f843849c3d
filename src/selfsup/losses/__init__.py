"""Loss functions of self-supervised learning, as pure functions of tensors.

No state and no distributed logic here: a method gathers tensors across processes before the
call (see `selfsup.distributed.gather_with_grad`), so each equation reads the same on one
process or many. One module per family; every loss is importable from `selfsup.losses`, its
formula and paper in its docstring, and tested against a plain reference in tests/.
"""

from selfsup.losses.adversarial import (
    discriminator_accuracy,
    discriminator_loss,
    generator_loss,
)
from selfsup.losses.captioning import contrastive_caption_loss, sequence_log_prob, token_nll
from selfsup.losses.clustering import dino_loss, sinkhorn_knopp, swav_loss
from selfsup.losses.contrastive import info_nce, nt_xent
from selfsup.losses.counting import counting_loss, counting_terms
from selfsup.losses.crossmodal import clip_loss
from selfsup.losses.denoising_text import token_accuracy, token_cross_entropy
from selfsup.losses.density import (
    cd_surrogate,
    nade_logits,
    nade_nll,
    rbm_free_energy,
    rbm_pseudo_loglik,
)
from selfsup.losses.disentangle import disentangle_loss, mean_gaussian_kl
from selfsup.losses.inpainting import (
    central_weights,
    joint_inpainting_loss,
    weighted_region_mse,
)
from selfsup.losses.joint import (
    barlow_twins_loss,
    negative_cosine,
    normalized_mse,
    vicreg_loss,
    vicreg_terms,
)
from selfsup.losses.language import masked_token_loss, next_token_loss
from selfsup.losses.mahalanobis import nca_pairs
from selfsup.losses.memory import (
    instdisc_nce,
    instdisc_softmax,
    instdisc_z,
    moco_infonce,
    mocov3_contrastive,
    nearest_neighbour,
)
from selfsup.losses.metric import block_contrastive, contrastive_margin, npair, supcon, triplet
from selfsup.losses.predictive import cpc_accuracy, cpc_info_nce
from selfsup.losses.pretext import ab_regression
from selfsup.losses.quantization import (
    bits_per_dim,
    commitment_loss,
    discretized_gaussian_log_likelihood,
    perplexity,
    straight_through,
)
from selfsup.losses.reconstruction import normalise_patches, patch_mse, reconstruction_mse
from selfsup.losses.sentence_order import (
    quick_thoughts,
    quick_thoughts_accuracy,
    sentence_order_loss,
)
from selfsup.losses.temporal import (
    hierarchical_contrastive_loss,
    instance_contrastive_loss,
    temporal_contrastive_loss,
)
from selfsup.losses.text import contrastive_tension, supervised_info_nce
from selfsup.losses.translation import cycle_loss, identity_loss, per_sample_l1
from selfsup.losses.tstcc import temporal_contrast
from selfsup.losses.variational import (
    bernoulli_nll,
    beta_vae_loss,
    gaussian_kl,
    gaussian_nll,
    reparameterise,
    vae_terms,
)
from selfsup.losses.word_vectors import cbow_loss, skipgram_loss
from selfsup.losses.world_model import cswm_hinge_loss, transition_energy

__all__ = [
    "ab_regression",
    "barlow_twins_loss",
    "bernoulli_nll",
    "beta_vae_loss",
    "bits_per_dim",
    "block_contrastive",
    "cbow_loss",
    "cd_surrogate",
    "central_weights",
    "clip_loss",
    "commitment_loss",
    "contrastive_caption_loss",
    "contrastive_margin",
    "contrastive_tension",
    "counting_loss",
    "counting_terms",
    "cpc_accuracy",
    "cpc_info_nce",
    "cswm_hinge_loss",
    "cycle_loss",
    "dino_loss",
    "discretized_gaussian_log_likelihood",
    "discriminator_accuracy",
    "discriminator_loss",
    "disentangle_loss",
    "gaussian_kl",
    "gaussian_nll",
    "generator_loss",
    "hierarchical_contrastive_loss",
    "identity_loss",
    "info_nce",
    "instance_contrastive_loss",
    "instdisc_nce",
    "instdisc_softmax",
    "instdisc_z",
    "joint_inpainting_loss",
    "masked_token_loss",
    "mean_gaussian_kl",
    "moco_infonce",
    "mocov3_contrastive",
    "nade_logits",
    "nade_nll",
    "nca_pairs",
    "nearest_neighbour",
    "negative_cosine",
    "next_token_loss",
    "normalise_patches",
    "normalized_mse",
    "npair",
    "nt_xent",
    "patch_mse",
    "per_sample_l1",
    "perplexity",
    "quick_thoughts",
    "quick_thoughts_accuracy",
    "rbm_free_energy",
    "rbm_pseudo_loglik",
    "reconstruction_mse",
    "reparameterise",
    "sentence_order_loss",
    "sequence_log_prob",
    "sinkhorn_knopp",
    "skipgram_loss",
    "straight_through",
    "supcon",
    "supervised_info_nce",
    "swav_loss",
    "temporal_contrast",
    "temporal_contrastive_loss",
    "token_accuracy",
    "token_cross_entropy",
    "token_nll",
    "transition_energy",
    "triplet",
    "vae_terms",
    "vicreg_loss",
    "vicreg_terms",
    "weighted_region_mse",
]
