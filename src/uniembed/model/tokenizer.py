"""A Qwen2-style byte-level BPE tokenizer trained offline on a text corpus, for one model family.

The tokenizer reproduces the parts of the real Qwen2 tokenizer (the decoder of every family here) that
downstream code relies on: Qwen2's pre-tokenizer split regex followed by ByteLevel and NFC normalisation;
the family (:mod:`uniembed.model.families`) gives the special tokens, their names (``image_token``, ...),
``eos_token`` / ``pad_token`` and the chat template. The judge words ``Yes`` / ``No`` (with and without a
leading space) are guaranteed single tokens.
"""
from __future__ import annotations

import json
from collections.abc import Iterable

from typing import TYPE_CHECKING

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

if TYPE_CHECKING:   # transformers loads when a tokenizer is built (the workflow reads minimum_vocab_size without it)
    from transformers import PreTrainedTokenizerFast

# Qwen2's split regex (transformers.models.qwen2.tokenization_qwen2.PRETOKENIZE_REGEX).
QWEN2_SPLIT_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

JUDGE_WORDS = ("Yes", "No", " Yes", " No")

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


def minimum_vocab_size(family) -> int:
    """The least ``vocab_size`` a byte-level BPE with ``family``'s special tokens takes."""
    return len(family.special_tokens) + 256 + _RESERVED_SLOTS


def train_tokenizer(corpus: Iterable[str], family, vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """Train a Qwen2-style byte-level BPE on ``corpus`` with ``family``'s special tokens and chat template;
    the result has at most ``vocab_size`` tokens.

    Special tokens take the first ids (in the family's order); the 256 byte symbols follow, so any text is
    encodable however small the corpus.
    """
    from transformers import PreTrainedTokenizerFast

    minimum = minimum_vocab_size(family)
    if vocab_size < minimum:
        raise ValueError(f"vocab_size={vocab_size} is too small: a byte-level BPE needs at least {minimum}")
    backend = _empty_qwen2_bpe()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - _RESERVED_SLOTS,
        special_tokens=list(family.special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator((str(line) for line in corpus), trainer=trainer)
    backend = _merge_into_single_tokens(backend, JUDGE_WORDS)

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=family.eos_token,
        pad_token=family.pad_token,
        extra_special_tokens=dict(family.named_tokens),
        chat_template=family.chat_template,
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
    )
    # List every special token in the config; the named ones alone leave out e.g. <|im_start|>.
    unnamed = [token for token in family.special_tokens if token not in (tokenizer.eos_token, tokenizer.pad_token)]
    tokenizer.add_special_tokens({"extra_special_tokens": unnamed})
    if len(tokenizer) > vocab_size:
        raise ValueError(f"trained tokenizer has {len(tokenizer)} tokens, more than vocab_size={vocab_size}")
    assert_single_token(tokenizer, JUDGE_WORDS)
    return tokenizer
