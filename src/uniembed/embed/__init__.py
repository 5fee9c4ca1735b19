"""Embedding: encode items with a model, cache embeddings on disk, search pools with FAISS."""
