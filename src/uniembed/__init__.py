"""uniembed: train universal multimodal embedders from Qwen2-VL (U-MARVEL, UniME-V2) and evaluate them."""

__version__ = "0.1.0"
