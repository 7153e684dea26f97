"""Distillation losses as pure functions of tensors (no modules, no state), one module per family."""
