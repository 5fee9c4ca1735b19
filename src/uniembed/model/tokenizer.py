"""A Qwen2-style byte-level BPE tokenizer trained offline on a text corpus.

The tokenizer reproduces the parts of the real Qwen2-VL tokenizer that downstream code relies on:
Qwen2's pre-tokenizer split regex followed by ByteLevel, NFC normalisation, the Qwen special tokens,
``pad_token = "<|endoftext|>"``, ``eos_token = "<|im_end|>"`` and the Qwen2-VL-Instruct chat template.
The judge words ``Yes`` / ``No`` (with and without a leading space) are guaranteed single tokens.
"""
from __future__ import annotations

import json
from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

# Qwen2's split regex (transformers.models.qwen2.tokenization_qwen2.PRETOKENIZE_REGEX).
QWEN2_SPLIT_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Named multimodal tokens, exposed as ``tokenizer.image_token`` / ``tokenizer.image_token_id`` etc.
EXTRA_SPECIAL_TOKENS = {
    "image_token": "<|image_pad|>",
    "video_token": "<|video_pad|>",
    "vision_start_token": "<|vision_start|>",
    "vision_end_token": "<|vision_end|>",
}

JUDGE_WORDS = ("Yes", "No", " Yes", " No")

# The chat template shipped with Qwen2-VL-7B-Instruct (chat_template.json).
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Vocabulary slots kept free during training for the merges that make the judge words single tokens.
_RESERVED_SLOTS = 4 * len(JUDGE_WORDS)


def _empty_qwen2_bpe() -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    return tokenizer


def _merge_into_single_tokens(tokenizer: Tokenizer, words: Iterable[str]) -> Tokenizer:
    """Append lowest-priority BPE merges until every word in ``words`` encodes to one token.

    Appended merges rank after all trained ones: they only join pieces that the trained merges leave
    apart, so text that does not contain these words encodes as before.
    """
    state = json.loads(tokenizer.to_str())
    vocab: dict[str, int] = state["model"]["vocab"]
    merges: list = state["model"]["merges"]
    next_id = max([*vocab.values(), *(t["id"] for t in state["added_tokens"])]) + 1
    for word in words:
        while len(pieces := tokenizer.encode(word, add_special_tokens=False).tokens) > 1:
            left, right = pieces[0], pieces[1]
            merges.append([left, right])
            if left + right not in vocab:
                vocab[left + right] = next_id
                next_id += 1
            tokenizer = Tokenizer.from_str(json.dumps(state))
    return tokenizer


def assert_single_token(tokenizer, words: Iterable[str]) -> list[int]:
    """Return the token id of each word; raise ValueError naming any word that is not one token."""
    ids = []
    for word in words:
        encoded = tokenizer(word, add_special_tokens=False)["input_ids"]
        if len(encoded) != 1:
            pieces = tokenizer.convert_ids_to_tokens(encoded)
            raise ValueError(f"{word!r} is not a single token: it encodes to {len(encoded)} tokens {pieces}")
        ids.append(encoded[0])
    return ids


def train_tokenizer(corpus: Iterable[str], vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """Train a Qwen2-style byte-level BPE on ``corpus``; the result has at most ``vocab_size`` tokens.

    Special tokens take ids 0-7 (in :data:`SPECIAL_TOKENS` order); the 256 byte symbols follow, so any
    text is encodable however small the corpus.
    """
    minimum = len(SPECIAL_TOKENS) + 256 + _RESERVED_SLOTS
    if vocab_size < minimum:
        raise ValueError(f"vocab_size={vocab_size} is too small: a byte-level BPE needs at least {minimum}")
    backend = _empty_qwen2_bpe()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - _RESERVED_SLOTS,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator((str(line) for line in corpus), trainer=trainer)
    backend = _merge_into_single_tokens(backend, JUDGE_WORDS)

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=dict(EXTRA_SPECIAL_TOKENS),
        chat_template=QWEN2_VL_CHAT_TEMPLATE,
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
    )
    # List every Qwen special token in the config; the named ones alone leave out e.g. <|im_start|>.
    unnamed = [token for token in SPECIAL_TOKENS if token not in (tokenizer.eos_token, tokenizer.pad_token)]
    tokenizer.add_special_tokens({"extra_special_tokens": unnamed})
    if len(tokenizer) > vocab_size:
        raise ValueError(f"trained tokenizer has {len(tokenizer)} tokens, more than vocab_size={vocab_size}")
    assert_single_token(tokenizer, JUDGE_WORDS)
    return tokenizer
