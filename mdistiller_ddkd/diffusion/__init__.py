"""The diffusion machinery of DDKD and DiffKD: noise schedule, DDIM sampler, noise-prediction networks,
adaptive noise matching, the linear autoencoder, and the branch that composes them."""

from .autoencoder import LinearAutoencoder
from .blocks import Bottleneck, conv1x1_bn
from .branch import DiffusionBranch
from .noise_adapter import NoiseAdapter1x1, NoiseAdapter3x3, build_noise_adapter
from .noise_net import TIME_EMBEDDING_SIZE, NoiseNet1x1, NoiseNet3x3, build_noise_net
from .sampler import DDIMSampler, ddim_timesteps
from .schedule import LinearNoiseSchedule, linear_alphas_cumprod

__all__ = [
    "Bottleneck",
    "DDIMSampler",
    "DiffusionBranch",
    "LinearAutoencoder",
    "LinearNoiseSchedule",
    "NoiseAdapter1x1",
    "NoiseAdapter3x3",
    "NoiseNet1x1",
    "NoiseNet3x3",
    "TIME_EMBEDDING_SIZE",
    "build_noise_adapter",
    "build_noise_net",
    "conv1x1_bn",
    "ddim_timesteps",
    "linear_alphas_cumprod",
]
