"""DDKD: decoupled knowledge distillation with a diffusion denoiser (Wang & Zhu, 2024).

DiffKD's pipeline (a small diffusion model trained on teacher features/logits denoises the student's
before they are distilled) with the logit branch distilled by DKD. See ``docs/ddkd.md``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from yacs.config import CfgNode as CN

from ..diffusion import TIME_EMBEDDING_SIZE, DiffusionBranch, LinearAutoencoder
from ..diffusion.blocks import channels_last, mse_loss
from ..diffusion.variants import Variants, build_branch
from ..errors import ConfigError
from ..losses.logit import dkd_loss, kd_loss
from ._feature_align import ALIGN_MODES, align_spatial
from .base import Distiller, probe_features, probe_input_size
from .dkd import warmup_factor
from .registry import register_distiller

LOGIT_LOSSES = ("dkd", "kl")
#: values of the variant keys ``TARGET_SCALE`` and ``TIME_EMBEDDING_INIT`` (the first of each: the paper)
TARGET_SCALES = ("none", "unit")
TIME_EMBEDDING_INITS = ("normal", "zero")


def diffusion_kd_config(logit_loss: str = "dkd") -> CN:
    """The config node of DDKD (``logit_loss="dkd"``) and DIFFKD (``"kl"``): identical keys and defaults
    except ``LOGIT_LOSS``."""
    c = CN()
    c.CE_WEIGHT = 1.0
    c.DIFF_WEIGHT = 1.0  # λ1: diffusion loss of both branches (eq. 5)
    c.AE_WEIGHT = 1.0  # λ2: autoencoder reconstruction (eq. 7)
    c.KD_WEIGHT = 1.0  # λ3: distillation of the denoised feature and logits
    c.FEAT_WEIGHT = 1.0  # inside λ3: weight of the feature MSE
    c.USE_AE = True
    c.AE_CHANNELS = 0  # latent channels Ca; 0 = teacher channels // 2
    c.INFERENCE_STEPS = 5  # DDIM steps T (second half of a 2T grid: 400, 300, 200, 100, 0)
    c.TRAIN_TIMESTEPS = 1000
    c.FEAT_ALIGN = "pool"  # pool: average-pool the larger map | interpolate: upsample the smaller map
    c.LOGIT_LOSS = logit_loss  # dkd (DDKD) | kl (DiffKD)
    c.KL_T = 1.0  # temperature of the kl logit loss
    c.DENOISE_FEATS = True
    c.DENOISE_LOGITS = True
    c.ADAPTIVE_NOISE = True
    c.DKD = CN()
    c.DKD.ALPHA = 1.0
    c.DKD.BETA = 8.0
    c.DKD.T = 4.0
    c.DKD.WARMUP = 20
    # remedy, off by default (docs/diagnostics.md): distil the student's raw logits (plain DKD / KD) for the
    # first N epochs while the logit denoiser trains on the teacher's, then the denoised logits (eq. 10)
    c.RAW_LOGIT_EPOCHS = 0
    # opt-in variants (docs/ddkd.md#variants); the defaults are the paper's method, bit for bit
    c.LOGIT_STANDARDIZE = False  # logit branch on per-sample z-scores, its output mapped back with the student's
    c.TARGET_SCALE = "none"  # none | unit: each branch diffuses its latent divided by the latent's running RMS
    c.NOISE_NET_KD_GRAD = True  # False: the distillation terms do not reach the noise networks' weights
    c.ADAPTER_INIT_GAMMA = 0.0  # in (0, 1): the adapters start at this γ for every sample; 0: PyTorch's init
    c.TIME_EMBEDDING_INIT = "normal"  # normal: N(0, 1) (PyTorch's, as DiffKD) | zero: the noise nets' time tables
    return c


def _classes_and_channels(model: nn.Module, input_size: Sequence[int]) -> Tuple[int, int]:
    """(number of classes, channels of ``feats["feats"][-1]``) of ``model``."""
    logits, feats = probe_features(model, input_size)
    return logits.shape[1], feats["feats"][-1].shape[1]


def _check_schedule(node: str, inference_steps: int, train_timesteps: int, ae_channels: int) -> None:
    """Refuse diffusion settings the modules cannot be built with, naming the keys."""
    if inference_steps < 1:
        raise ConfigError(f"{node}.INFERENCE_STEPS must be >= 1, got {inference_steps}")
    if not 2 * inference_steps <= train_timesteps <= TIME_EMBEDDING_SIZE:
        raise ConfigError(f"{node}.TRAIN_TIMESTEPS {train_timesteps} must lie in [2 x INFERENCE_STEPS, "
                          f"{TIME_EMBEDDING_SIZE}] = [{2 * inference_steps}, {TIME_EMBEDDING_SIZE}] (the DDIM grid "
                          f"and the time embedding)")
    if ae_channels < 0:
        raise ConfigError(f"{node}.AE_CHANNELS must be >= 0 (0: half the teacher's channels), got {ae_channels}")


def _variants(node: str, c: CN) -> Variants:
    """The opt-in variants the config node ``c`` asks for; values that mean nothing are refused, naming the key."""
    if c.TARGET_SCALE not in TARGET_SCALES:
        raise ConfigError(f"{node}.TARGET_SCALE must be one of {TARGET_SCALES}, got {c.TARGET_SCALE!r}")
    if c.TIME_EMBEDDING_INIT not in TIME_EMBEDDING_INITS:
        raise ConfigError(f"{node}.TIME_EMBEDDING_INIT must be one of {TIME_EMBEDDING_INITS}, "
                          f"got {c.TIME_EMBEDDING_INIT!r}")
    if not 0.0 <= float(c.ADAPTER_INIT_GAMMA) < 1.0:
        raise ConfigError(f"{node}.ADAPTER_INIT_GAMMA must lie in (0, 1), or be 0 for PyTorch's initialisation; "
                          f"got {c.ADAPTER_INIT_GAMMA}")
    return Variants(zero_time_embedding=c.TIME_EMBEDDING_INIT == "zero",
                    adapter_init_gamma=float(c.ADAPTER_INIT_GAMMA),
                    standardize_logits=bool(c.LOGIT_STANDARDIZE),
                    unit_scale=c.TARGET_SCALE == "unit",
                    noise_net_kd_grad=bool(c.NOISE_NET_KD_GRAD))


@register_distiller("DDKD", config=diffusion_kd_config("dkd"))
class DDKD(Distiller):
    """Diffusion-denoised features (MSE) and logits (DKD, or KL for DiffKD) distilled from the teacher.

    Losses (eq. 10): ``loss_ce``, ``loss_kd_feat``, ``loss_kd_logit``, ``loss_diff``, ``loss_ae``; a
    branch turned off drops its terms. All diffusion modules are extra training-time parameters; the
    student is unchanged.
    """

    #: the config node this class reads (DIFFKD reads its own)
    config_key = "DDKD"

    def __init__(self, student: nn.Module, teacher: nn.Module, cfg: CN) -> None:
        super().__init__(student, teacher)
        c = cfg[self.config_key]
        if c.LOGIT_LOSS not in LOGIT_LOSSES:
            raise ConfigError(f"{self.config_key}.LOGIT_LOSS must be one of {LOGIT_LOSSES}, got {c.LOGIT_LOSS!r}")
        if c.FEAT_ALIGN not in ALIGN_MODES:
            raise ConfigError(f"{self.config_key}.FEAT_ALIGN must be one of {ALIGN_MODES}, got {c.FEAT_ALIGN!r}")
        _check_schedule(self.config_key, int(c.INFERENCE_STEPS), int(c.TRAIN_TIMESTEPS), int(c.AE_CHANNELS))
        variants = _variants(self.config_key, c)
        self.ce_weight = float(c.CE_WEIGHT)
        self.diff_weight = float(c.DIFF_WEIGHT)
        self.ae_weight = float(c.AE_WEIGHT)
        self.kd_weight = float(c.KD_WEIGHT)
        self.feat_weight = float(c.FEAT_WEIGHT)
        self.feat_align = c.FEAT_ALIGN
        self.logit_loss = c.LOGIT_LOSS
        self.kl_temperature = float(c.KL_T)
        self.dkd_alpha = float(c.DKD.ALPHA)
        self.dkd_beta = float(c.DKD.BETA)
        self.dkd_temperature = float(c.DKD.T)
        self.dkd_warmup = float(c.DKD.WARMUP)
        self.raw_logit_epochs = float(c.RAW_LOGIT_EPOCHS)

        size = probe_input_size(cfg)
        num_classes, ct = _classes_and_channels(teacher, size)
        _, cs = _classes_and_channels(student, size)
        branch_args = dict(
            inference_steps=int(c.INFERENCE_STEPS),
            train_timesteps=int(c.TRAIN_TIMESTEPS),
            adaptive_noise=bool(c.ADAPTIVE_NOISE),
        )
        self.autoencoder: Optional[LinearAutoencoder] = None
        self.feat_branch: Optional[DiffusionBranch] = None
        self.logit_branch: Optional[DiffusionBranch] = None
        if c.DENOISE_FEATS:
            latent = ct
            if c.USE_AE:
                latent = int(c.AE_CHANNELS) or ct // 2
                self.autoencoder = LinearAutoencoder(ct, latent)
            self.feat_branch = build_branch(cs, latent, "3x3", replace(variants, standardize_logits=False),
                                            **branch_args)
        if c.DENOISE_LOGITS:
            self.logit_branch = build_branch(num_classes, num_classes, "1x1", variants, **branch_args)
        device = next(student.parameters()).device
        for module in (self.autoencoder, self.feat_branch, self.logit_branch):
            if module is not None:
                module.to(device)

    @property
    def logit_temperature(self) -> float:
        """The temperature of the logit distillation term (DKD's T, or KL_T for DiffKD)."""
        return self.kl_temperature if self.logit_loss == "kl" else self.dkd_temperature

    def feature_pair(
        self, feats_student: Dict, feats_teacher: Dict
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """``(student feature, teacher feature, teacher latent (detached), AE reconstruction or None)`` of the
        last stage, spatially aligned: what the feature branch distils (also read by the diagnostics)."""
        feat_s, feat_t = align_spatial(feats_student["feats"][-1], feats_teacher["feats"][-1], self.feat_align)
        if self.autoencoder is None:
            return feat_s, feat_t, feat_t.detach(), None
        feat_t = channels_last(feat_t)  # the autoencoder's layout, so its reconstruction loss compares like with like
        latent_t, reconstruction = self.autoencoder(feat_t)
        return feat_s, feat_t, latent_t.detach(), reconstruction

    def logit_transform(self, logits_student: torch.Tensor, denoise: bool = True
                        ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(logits the distillation term sees, γ)`` from the student's logits through the logit branch
        (``denoise=False``: its projections only, the diagnostics' "raw" side)."""
        out, gamma = self.logit_branch.transform(logits_student[:, :, None, None], denoise=denoise)
        return out.flatten(1), gamma

    @staticmethod
    def logit_diffusion_target(logits_teacher: torch.Tensor) -> torch.Tensor:
        """What the logit branch's diffusion loss (eq. 5) takes: the teacher's logits as (B,K,1,1)."""
        return logits_teacher[:, :, None, None]

    def _logit_distillation(
        self, logits: torch.Tensor, logits_teacher: torch.Tensor, target: torch.Tensor, epoch: float
    ) -> torch.Tensor:
        """DKD (with warm-up) or KL at ``KL_T`` of ``logits`` against the teacher's, in float32."""
        logits, logits_teacher = logits.float(), logits_teacher.float()
        if self.logit_loss == "kl":
            return kd_loss(logits, logits_teacher, self.kl_temperature)
        return warmup_factor(epoch, self.dkd_warmup) * dkd_loss(
            logits, logits_teacher, target, self.dkd_alpha, self.dkd_beta, self.dkd_temperature
        )

    def forward_train(
        self, image: torch.Tensor, target: torch.Tensor, epoch: float = 1, **kwargs
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        logits_student, feats_student = self.student(image)
        logits_teacher, feats_teacher = self.teacher_forward(image)
        losses: Dict[str, torch.Tensor] = {"loss_ce": self.ce_weight * F.cross_entropy(logits_student, target)}
        diffusion_terms = []
        loss_ae = None

        if self.feat_branch is not None:
            feat_s, feat_t, latent_t, reconstruction = self.feature_pair(feats_student, feats_teacher)
            if reconstruction is not None:
                loss_ae = mse_loss(reconstruction, feat_t)
            denoised, loss_diff_feat = self.feat_branch(feat_s, latent_t)
            losses["loss_kd_feat"] = self.kd_weight * self.feat_weight * mse_loss(denoised, latent_t)
            diffusion_terms.append(loss_diff_feat)

        logits_for_kd = logits_student
        if self.logit_branch is not None:
            raw_first = epoch <= self.raw_logit_epochs  # remedy: the raw logits are distilled, the denoiser learns
            denoised, loss_diff_logit = self.logit_branch(None if raw_first else logits_student[:, :, None, None],
                                                          self.logit_diffusion_target(logits_teacher))
            if denoised is not None:
                logits_for_kd = denoised.flatten(1)
            diffusion_terms.append(loss_diff_logit)
        losses["loss_kd_logit"] = self.kd_weight * self._logit_distillation(
            logits_for_kd, logits_teacher, target, epoch
        )

        if diffusion_terms:
            losses["loss_diff"] = self.diff_weight * sum(diffusion_terms)
        if loss_ae is not None:
            losses["loss_ae"] = self.ae_weight * loss_ae
        return logits_student, losses
