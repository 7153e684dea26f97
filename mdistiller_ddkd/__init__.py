"""mdistiller-ddkd: DDKD (decoupled knowledge distillation with a diffusion denoiser) and its baselines,
with mdistiller's interfaces, on CPU, one GPU or many."""

__version__ = "0.1.0"
