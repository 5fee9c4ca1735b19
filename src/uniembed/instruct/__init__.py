"""The tiny instruct MLLM of the embedded default: instruction data from train records, generative training."""
