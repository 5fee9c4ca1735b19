"""Qwen2-VL / Qwen2.5-VL models: tiny offline factory, torchvision-free processors, loading helpers."""
