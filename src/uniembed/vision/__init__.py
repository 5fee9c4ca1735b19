"""Vision pretraining of the tiny model's tower (the analogue of a CLIP-initialised Qwen2-VL tower) and the
linear probes that check it: :mod:`.renderings` (fresh pictures of the world), :mod:`.pretrain` (CLIP-style
training), :mod:`.probe` (held-out linear probes). The tower's image tokens come from the model family
(:meth:`uniembed.model.families.base.Family.image_encoder`)."""
