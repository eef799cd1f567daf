"""Training engine: hooks, optimizers and checkpoint compatibility."""
