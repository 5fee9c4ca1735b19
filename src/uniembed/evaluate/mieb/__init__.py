"""MIEB (Xiao et al. 2025) through mteb: the encoder wrapper, local tasks on the synthetic world, own evaluators."""
