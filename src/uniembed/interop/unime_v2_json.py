"""UniME-V2's released judged training data: the JSON format and its text rules.

Found in the released repository GaryGuTC/UniME-v2 (commit 40c076c): ``data/example_data.json`` is one
JSON *list* of records::

    {"query_text": "<|image_1|>\\nRepresent the given image with the following question: What is ...?\\n",
     "query_image": "images/A-OKVQA/Train/A-OKVQA_image_3179.jpg",
     "pos_text": "parking/standing", "pos_image": "",
     "query_pos_scores": 0.7215937972068787,                  # one float: the judge's s(q, c_t)
     "hard_negatives": [["prevent parking", ""], ...],        # ten [text, image] pairs
     "hard_negatives_scores": [0.44075605273246765, ...]}     # one float per hard negative

``<|image_1|>`` marks the image in a text when the side has an image; an absent image is
``""``; image paths are relative to the image folder (``os.path.join(image_dir, path)``). The loader
``Embedding/src/dataset.py`` (``UniME_v2_dataset.get_rerank_data``) reads ``query_pos_scores`` as a
float and the negatives' scores by position; ``Embedding/src/loss.py`` turns
[query_pos_scores, *hard_negatives_scores] into soft labels softmax(s / tau) against
softmax(cos / tau) with the symmetric KL: the paper's eq. 2-4 (UniME-V2, "MLLM Judgment Based
Training Framework"), which this project's ``soft_label`` objective computes from the same scores.
The released loader consumes the negatives two by two (an implementation detail of its batching);
here every negative keeps its own score, in the file's order.

Interpretations (not spelled out by the release):

* ``<|image_1|>`` in a text whose side has no image occurs in the release (``example_data.json``
  record 23, a WebQA query, as in MMEB's WebQA train rows): such a side is read as text (the
  placeholder is dropped from the content, kept in ``original_text``) and counted
  (``placeholder_without_image``); an image whose text lacks the placeholder is quarantined;
* an image field may also be ``null`` (read as ``""``); texts must be strings (the loader calls
  ``str.replace`` on them); a score must be a JSON number (not a bool, not a list) in [0, 1] (P(Yes));
* the texts carry VLM2Vec's task instructions; they are split off by the MMEB reader's rule
  (:func:`uniembed.data.readers.mmeb_prompts.split_instruction`), the text as read stays in
  ``original_text`` and the exporter writes it back verbatim;
* a record whose negatives all score exactly 1.0 is the paper's random fallback ("assign each a
  semantic matching score of 1.0", §Hard Negative Sampling): its row gets outcome ``fallback_random``;
* the filter's count of removed false negatives is not in the file: ``false_negatives_removed`` is 0.
"""
from __future__ import annotations

from ..data.readers.mmeb_prompts import PLACEHOLDER, split_instruction

QUERY_TEXT, QUERY_IMAGE, POS_TEXT, POS_IMAGE = "query_text", "query_image", "pos_text", "pos_image"
POS_SCORE, NEGATIVES, NEGATIVE_SCORES = "query_pos_scores", "hard_negatives", "hard_negatives_scores"
#: The keys of one record, in the released file's order.
KEYS = (QUERY_TEXT, QUERY_IMAGE, POS_TEXT, POS_IMAGE, POS_SCORE, NEGATIVES, NEGATIVE_SCORES)
STRATEGY = "unime_v2"           # HARD_NEGATIVES.strategy: scores are a judge's P(Yes) in [0, 1]
FALLBACK_SCORE = 1.0            # the paper's score of a randomly filled negative


def compose_text(instruction: str | None, text: str | None, has_image: bool) -> str:
    """A UniME-V2 text from its parts: ``<|image_1|>`` on its own line when there is an image, then
    the instruction and the content joined by a space (VLM2Vec's layout, without its trailing newline)."""
    body = " ".join(part for part in (instruction, text) if part)
    return "\n".join(part for part in (PLACEHOLDER if has_image else "", body) if part)


def unime_text(original: str | None, instruction: str | None, text: str | None, has_image: bool,
               check_instruction: bool = True) -> str:
    """The text to export: the text as read (``original``) when it splits back into the stored parts and
    holds ``<|image_1|>`` if the row has an image (a source in this format); else :func:`compose_text`.
    Candidates have no instruction column: pass ``check_instruction=False``."""
    if original is not None and (PLACEHOLDER in original or not has_image):
        split = split_instruction(original)
        if split.content == text and (not check_instruction or split.instruction == instruction):
            return original
    return compose_text(instruction, text, has_image)
