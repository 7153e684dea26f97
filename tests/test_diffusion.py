"""The diffusion machinery of DDKD, each equation against an independent computation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mdistiller_ddkd.diffusion import (
    DDIMSampler,
    DiffusionBranch,
    LinearAutoencoder,
    LinearNoiseSchedule,
    NoiseAdapter1x1,
    NoiseAdapter3x3,
    NoiseNet1x1,
    NoiseNet3x3,
    ddim_timesteps,
)
from mdistiller_ddkd.losses.diffusion import noise_prediction_loss


# ----------------------------------------------------------------------------------------------- schedule
def test_alphas_cumprod_matches_closed_form_in_float64():
    schedule = LinearNoiseSchedule(1000)
    # independent: β_t = 1e-4 + (0.02 - 1e-4)·t/999, ᾱ_t = exp(Σ log(1-β_s)) accumulated in Python floats
    log_sum, expected = 0.0, []
    for t in range(1000):
        beta = 1e-4 + (0.02 - 1e-4) * t / 999
        log_sum += math.log1p(-beta)
        expected.append(math.exp(log_sum))
    expected = torch.tensor(expected, dtype=torch.float64)
    assert schedule.alphas_cumprod.dtype == torch.float32
    torch.testing.assert_close(schedule.alphas_cumprod.double(), expected, rtol=2e-6, atol=1e-9)
    from mdistiller_ddkd.diffusion.schedule import linear_betas

    torch.testing.assert_close(linear_betas()[[0, -1]], torch.tensor([1e-4, 0.02], dtype=torch.float64))
    torch.testing.assert_close(schedule.sqrt_alphas_cumprod.double(), expected.sqrt(), rtol=2e-6, atol=1e-9)
    torch.testing.assert_close(schedule.sqrt_one_minus_alphas_cumprod.double(), (1 - expected).sqrt(), rtol=2e-6,
                               atol=1e-9)
    # derived constants are not saved in checkpoints
    assert schedule.state_dict() == {}


def test_q_sample_has_predicted_mean_and_variance():
    schedule = LinearNoiseSchedule(1000)
    torch.manual_seed(0)
    n = 200_000
    for t_value in (0, 250, 999):
        y0 = torch.full((n, 1), 1.5)
        t = torch.full((n,), t_value, dtype=torch.long)
        samples = schedule.q_sample(y0, t, torch.randn(n, 1))
        ab = schedule.alphas_cumprod[t_value].item()
        assert samples.mean().item() == pytest.approx(math.sqrt(ab) * 1.5, abs=0.01)
        assert samples.var().item() == pytest.approx(1 - ab, abs=0.01 + 0.02 * (1 - ab))


def test_q_sample_per_sample_timesteps_and_bf16_computed_in_float32():
    schedule = LinearNoiseSchedule(1000)
    torch.manual_seed(1)
    y0, noise = torch.randn(3, 4, 2, 2), torch.randn(3, 4, 2, 2)
    t = torch.tensor([0, 500, 999])
    out = schedule.q_sample(y0, t, noise)
    for i in range(3):
        ab = schedule.alphas_cumprod[t[i]].double()
        ref = ab.sqrt() * y0[i].double() + (1 - ab).sqrt() * noise[i].double()
        torch.testing.assert_close(out[i].double(), ref, rtol=1e-5, atol=1e-5)
    out_bf16 = schedule.q_sample(y0.bfloat16(), t, noise.bfloat16())
    assert out_bf16.dtype == torch.bfloat16
    ref32 = schedule.q_sample(y0.bfloat16().float(), t, noise.bfloat16().float())
    assert torch.equal(out_bf16, ref32.bfloat16())


# ------------------------------------------------------------------------------------------------ sampler
EXPECTED_TIMESTEPS = {
    1: [0],
    2: [250, 0],
    3: [332, 166, 0],
    4: [375, 250, 125, 0],
    5: [400, 300, 200, 100, 0],
    6: [415, 332, 249, 166, 83, 0],
    7: [426, 355, 284, 213, 142, 71, 0],
    8: [434, 372, 310, 248, 186, 124, 62, 0],
    9: [440, 385, 330, 275, 220, 165, 110, 55, 0],
    10: [450, 400, 350, 300, 250, 200, 150, 100, 50, 0],
}


@pytest.mark.parametrize("steps", sorted(EXPECTED_TIMESTEPS))
def test_ddim_timesteps_are_second_half_of_2T_grid(steps):
    assert ddim_timesteps(steps, 1000) == EXPECTED_TIMESTEPS[steps]


def test_ddim_rejects_impossible_grids():
    with pytest.raises(ValueError):
        ddim_timesteps(0)
    with pytest.raises(ValueError):
        ddim_timesteps(6, 10)


class OracleNoise(nn.Module):
    """Returns the true ε whatever the input (and records the timesteps it was asked about)."""

    def __init__(self, eps):
        super().__init__()
        self.eps, self.calls = eps, []

    def forward(self, y, t):
        self.calls.append(t)
        return self.eps.to(y.dtype)


@pytest.mark.parametrize("steps", [1, 3, 5, 10])
def test_ddim_with_oracle_recovers_x0(steps):
    schedule = LinearNoiseSchedule(1000)
    sampler = DDIMSampler(schedule.alphas_cumprod, steps)
    torch.manual_seed(2)
    x0, eps = torch.randn(4, 8, 3, 3), torch.randn(4, 8, 3, 3)
    t0 = EXPECTED_TIMESTEPS[steps][0]
    ab = schedule.alphas_cumprod[t0]
    y = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    oracle = OracleNoise(eps)
    out = sampler(oracle, y)
    assert oracle.calls == EXPECTED_TIMESTEPS[steps]
    torch.testing.assert_close(out, x0, rtol=1e-5, atol=1e-5)


def test_ddim_from_adapter_start_recovers_implied_x0():
    """Adapter start y = γ·z + (1-γ)·ε; with the oracle ε the sampler returns (y - √(1-ᾱ_400) ε)/√ᾱ_400."""
    schedule = LinearNoiseSchedule(1000)
    sampler = DDIMSampler(schedule.alphas_cumprod, 5)
    adapter = NoiseAdapter3x3(16)
    torch.manual_seed(3)
    z, eps = torch.randn(3, 16, 4, 4), torch.randn(3, 16, 4, 4)
    start, gamma = adapter(z, eps)
    out = sampler(OracleNoise(eps), start)
    ab = schedule.alphas_cumprod[400].double()
    implied_x0 = (start.double() - (1 - ab).sqrt() * eps.double()) / ab.sqrt()
    torch.testing.assert_close(out.double(), implied_x0, rtol=1e-5, atol=1e-5)


def test_ddim_steps_match_eq6_computed_independently_and_is_deterministic():
    schedule = LinearNoiseSchedule(1000)
    sampler = DDIMSampler(schedule.alphas_cumprod, 5)
    torch.manual_seed(4)
    weight = torch.randn(6, 6, dtype=torch.float64) * 0.3
    bias = torch.randn(1000, 6, dtype=torch.float64) * 0.1

    def net(y, t):  # a deterministic, input- and time-dependent noise predictor
        return (torch.einsum("oc,bchw->bohw", weight, y.double()) + bias[t].view(1, -1, 1, 1)).to(y.dtype)

    y0 = torch.randn(2, 6, 3, 3)
    out = sampler(net, y0)
    assert torch.equal(out, sampler(net, y0))  # η = 0: no randomness
    # eq. 6 in float64 from the closed-form schedule
    ac = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)
    y = y0.double()
    for t in [400, 300, 200, 100, 0]:
        eps = net(y, t)
        x0_hat = (y - (1 - ac[t]).sqrt() * eps) / ac[t].sqrt()
        ab_prev = ac[t - 100] if t >= 100 else torch.tensor(1.0, dtype=torch.float64)
        y = ab_prev.sqrt() * x0_hat + (1 - ab_prev).sqrt() * eps
    torch.testing.assert_close(out.double(), y, rtol=1e-4, atol=1e-4)


def test_ddim_gradients_flow_through_every_step():
    schedule = LinearNoiseSchedule(1000)
    sampler = DDIMSampler(schedule.alphas_cumprod, 5)
    net = NoiseNet3x3(16)
    y = torch.randn(2, 16, 4, 4, requires_grad=True)
    sampler(net, y).square().mean().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0
    # the time embedding rows of all five timesteps receive gradient (so every step is in the graph)
    used = net.time_embedding.weight.grad.abs().sum(1).nonzero().flatten().tolist()
    assert used == [0, 100, 200, 300, 400]


def test_ddim_keeps_dtype_and_updates_in_float32():
    schedule = LinearNoiseSchedule(1000)
    sampler = DDIMSampler(schedule.alphas_cumprod, 5)
    eps = torch.randn(2, 4, 2, 2)
    y = torch.randn(2, 4, 2, 2).bfloat16()
    out = sampler(OracleNoise(eps.bfloat16()), y)
    assert out.dtype == torch.bfloat16
    ref = sampler(OracleNoise(eps.bfloat16().float()), y.float())
    assert torch.equal(out, ref.bfloat16())


# ------------------------------------------------------------------------------------ networks, adapter, AE
@pytest.mark.parametrize("net_cls,shape", [(NoiseNet3x3, (3, 32, 4, 4)), (NoiseNet1x1, (3, 10, 1, 1))])
def test_noise_net_adds_time_embedding_and_keeps_shape(net_cls, shape):
    torch.manual_seed(5)
    net = net_cls(shape[1]).eval()
    assert net.time_embedding.weight.shape == (1280, shape[1])
    y = torch.randn(shape)
    out = net(y, 7)
    assert out.shape == shape
    # the same timestep given per sample gives the same answer; the body sees y + E[t] broadcast over H, W
    torch.testing.assert_close(net(y, torch.full((shape[0],), 7)), out)
    torch.testing.assert_close(out, net.body(y + net.time_embedding.weight[7].view(1, -1, 1, 1)))
    assert not torch.allclose(net(y, 8), out)


@pytest.mark.parametrize("adapter_cls,shape", [(NoiseAdapter3x3, (5, 16, 4, 4)), (NoiseAdapter1x1, (5, 10, 1, 1))])
def test_adapter_gamma_in_unit_interval_and_start_point(adapter_cls, shape):
    torch.manual_seed(6)
    adapter = adapter_cls(shape[1])
    z = torch.randn(shape) * 3
    gamma = adapter.gamma(z)
    assert gamma.shape == (shape[0],)
    assert bool(((gamma > 0) & (gamma < 1)).all())
    eps = torch.randn(shape)
    start, g = adapter(z, eps)
    torch.testing.assert_close(g, gamma)
    expected = torch.stack([gamma[i] * z[i] + (1 - gamma[i]) * eps[i] for i in range(shape[0])])
    torch.testing.assert_close(start, expected)
    # γ from softmax column 0 of the linear head, independently
    logits2 = adapter.pred(adapter.features(z))
    torch.testing.assert_close(gamma, logits2.exp()[:, 0] / logits2.exp().sum(1))
    # fresh noise is drawn when none is given: the start point's residual (start - γz)/(1-γ) looks Gaussian
    start_fresh, g2 = adapter(z)
    residual = (start_fresh - g2.view(-1, 1, 1, 1) * z) / (1 - g2.view(-1, 1, 1, 1))
    assert abs(residual.mean().item()) < 0.5 and 0.5 < residual.std().item() < 1.5


def test_autoencoder_reconstruction_loss_falls_when_trained_alone():
    torch.manual_seed(7)
    feats = torch.randn(16, 32, 4, 4)
    ae = LinearAutoencoder(32, 16)
    assert ae(feats)[0].shape == (16, 16, 4, 4)
    opt = torch.optim.Adam(ae.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        latent, rec = ae(feats)
        loss = torch.nn.functional.mse_loss(rec, feats)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_noise_prediction_loss_is_mse_in_float32():
    a, b = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    assert noise_prediction_loss(a, b).item() == pytest.approx(((a - b) ** 2).mean().item(), rel=1e-6)
    out = noise_prediction_loss(a.bfloat16(), b.bfloat16())
    assert out.dtype == torch.float32


# ------------------------------------------------------------------------------------------------- branch
def test_branch_diffusion_loss_is_eq5_and_detaches_target():
    torch.manual_seed(8)
    branch = DiffusionBranch(8, 16, "3x3").eval()
    target = torch.randn(4, 16, 3, 3, requires_grad=True)
    torch.manual_seed(9)
    loss = branch.diffusion_loss(target)
    torch.manual_seed(9)
    t = torch.randint(0, 1000, (4,))
    eps = torch.randn(4, 16, 3, 3)
    ac = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)[t].view(4, 1, 1, 1)
    noisy = (ac.sqrt() * target.detach().double() + (1 - ac).sqrt() * eps.double()).float()
    expected = ((branch.noise_net(noisy, t) - eps) ** 2).mean()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    loss.backward()
    assert target.grad is None
    assert branch.proj_in.weight.grad is None and branch.adapter.pred.weight.grad is None


def test_branch_composition_and_switch_off_adapter():
    torch.manual_seed(10)
    branch = DiffusionBranch(8, 16, "3x3", inference_steps=3)
    x, target = torch.randn(2, 8, 4, 4), torch.randn(2, 16, 4, 4)
    torch.manual_seed(11)
    denoised, _ = branch(x, target)
    torch.manual_seed(11)
    z = branch.proj_in(x)
    start, _ = branch.adapter(z)  # the adapter draws its noise first
    expected = branch.proj_out(branch.sampler(branch.noise_net, start))
    torch.testing.assert_close(denoised, expected)
    plain = DiffusionBranch(8, 16, "3x3", inference_steps=3, adaptive_noise=False)
    assert plain.adapter is None
    z = plain.proj_in(x)
    torch.testing.assert_close(plain.chain(z)[0], plain.sampler(plain.noise_net, z))


def test_diffusion_loss_decreases_on_a_tiny_learnable_task():
    torch.manual_seed(12)
    # structured latents: a few fixed prototypes with small perturbations
    prototypes = torch.randn(4, 8, 2, 2)
    data = prototypes.repeat(8, 1, 1, 1) + 0.05 * torch.randn(32, 8, 2, 2)
    branch = DiffusionBranch(8, 8, "3x3")
    opt = torch.optim.Adam(branch.noise_net.parameters(), lr=3e-3)

    def eval_loss():
        branch.eval()
        with torch.random.fork_rng():
            torch.manual_seed(99)
            value = sum(branch.diffusion_loss(data).item() for _ in range(8)) / 8
        branch.train()
        return value

    before = eval_loss()
    for _ in range(150):
        loss = branch.diffusion_loss(data)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = eval_loss()
    assert after < 0.7 * before, (before, after)
