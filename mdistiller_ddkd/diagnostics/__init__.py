"""Instruments for seeing what the denoiser does: raw-vs-denoised gap metrics (DDKD/DIFFKD), per-term
gradient norms (every method), run plots. The ``LOG.DIAGNOSTICS`` trainer hook that uses them is
``engine/hooks/diagnostics.py``. See docs/diagnostics.md."""

from .gap import GapReport, gap_metrics, is_diffusion_distiller
from .gradients import GradientReport, distiller_gradient_norms, term_gradient_norms
from .isolation import isolated
from .representation_metrics import kl_teacher_student, linear_cka, top1_accuracy, top1_agreement

__all__ = ["GapReport", "GradientReport", "distiller_gradient_norms", "gap_metrics",
           "is_diffusion_distiller", "isolated", "kl_teacher_student", "linear_cka",
           "term_gradient_norms", "top1_accuracy", "top1_agreement"]
