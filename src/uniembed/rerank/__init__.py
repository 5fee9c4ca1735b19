"""Generative rerankers (U-MARVEL §3.3 eq. 3; UniME-V2-Reranker): prompts, training examples, fusion."""
