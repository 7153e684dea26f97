"""Training machinery: configuration, the single trainer, checkpoints and devices."""
