"""Contrastive training: data and sampling, InfoNCE, learnable temperature, cross-device gathering, gradient caching."""
