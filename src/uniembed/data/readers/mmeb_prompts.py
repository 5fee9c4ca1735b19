"""Split an MMEB (VLM2Vec) text into its task instruction and its content.

VLM2Vec writes the task instruction into the text of every MMEB row (train ``qry``/``pos_text``/
``neg_text``, eval ``qry_text``/``tgt_text``), after the image placeholder::

    "<|image_1|>\\nRepresent the given image with the following question: What is in the bowl?\\n"
    "Find me an everyday image that matches the given caption: A man on a moped.\\n"
    "<|image_1|>\\nRepresent the given image.\\n"              an image target: instruction only
    "<|image_1|>\\nSelect the portion of the image that isolates the object labeled as \\"dog\\"\\n"

The rule, applied to queries and targets alike once the placeholder and the outer whitespace are
removed (:func:`split_instruction`):

1. **known instruction**: the text starts, ignoring case, with a stem of :data:`INSTRUCTIONS`,
   then an optional ``.`` or ``:``, then whitespace or the end. For a stem that takes content the
   rest is the content; a stem that takes none applies only when nothing follows. Longest stem wins.
2. **colon rule** (an instruction the table does not know): the text starts with a verb MMEB's
   instructions start with (:data:`IMPERATIVES`) and its first line holds ``": "``: the
   instruction runs up to and including the first colon.
3. otherwise the whole text is content and there is no instruction.

:data:`INSTRUCTIONS` covers the prompts of all 36 MMEB datasets (MMEB-eval) and the 20 MMEB-train
subsets, as VLM2Vec's data and ``archive/instruction_dict.py`` spell them.
"""
from __future__ import annotations

from typing import NamedTuple

PLACEHOLDER = "<|image_1|>"

#: (stem, takes content, where it occurs). Stems are written without their final "." or ":".
INSTRUCTIONS: tuple[tuple[str, bool, str], ...] = (
    # Classification (10 eval; ImageNet_1K, N24News, HatefulMemes, VOC2007, SUN397 train)
    ("Represent the given image for classification", False, "ImageNet-1K, ImageNet-A, ImageNet-R, CIFAR-100"),
    ("Represent the given news image with the following caption for domain classification", True, "N24News"),
    ("Represent the given image for binary classification to determine whether it constitutes hateful "
     "speech or not", False, "HatefulMemes"),
    ("Identify the object shown in the image", False, "VOC2007, ObjectNet"),
    ("Identify the scene shown in the image", False, "SUN397, Place365"),
    ("Identify the country depicted in the image", False, "Country211"),
    # VQA (10 eval; OK-VQA, A-OKVQA, DocVQA, InfographicsVQA, ChartQA, Visual7W train)
    ("Represent the given image with the following question", True, "all VQA datasets"),
    # Retrieval queries (12 eval; VisDial .. WebQA train)
    ("Represent the given dialogue about an image, which is used for image retrieval", True, "VisDial"),
    ("Given an image, find a similar everyday image with the described changes", True, "CIRR"),
    ("Retrieve an image of this news caption", True, "VisualNews_t2i"),
    ("Find a caption for the news in the given photo", False, "VisualNews_i2t"),
    ("Find me an everyday image that matches the given caption", True, "MSCOCO_t2i"),
    ("Find an image caption describing the given everyday image", False, "MSCOCO_i2t"),
    ("Find a day-to-day image that looks similar to the provided image", False, "NIGHTS"),
    ("Find a Wikipedia image that answers this question", True, "WebQA"),
    ("Find an image to match the fashion image and style note", True, "FashionIQ"),
    ("Find the document image that can answer the given query", True, "Wiki-SS-NQ"),
    ("Find the document screenshot that can answer the given query", True, "Wiki-SS-NQ (paper wording)"),
    ("Retrieve a Wikipedia image-description pair that provides evidence for the question of this image",
     True, "OVEN"),
    ("Find a news image that matches the provided caption", True, "EDIS"),
    # Retrieval targets
    ("Represent the given image", False, "image targets of VisDial, CIRR, VisualNews_t2i, MSCOCO_t2i, NIGHTS, "
     "FashionIQ, Wiki-SS-NQ"),
    ("Represent the given document screenshot", False, "Wiki-SS-NQ targets (paper wording)"),
    ("Represent the given Wikipedia image with related text information", True, "WebQA, OVEN targets"),
    ("Represent the given image with related text information", True, "EDIS targets"),
    # Grounding (4 eval; MSCOCO train)
    ("Select the portion of the image that isolates the object labeled as", True, "MSCOCO (train)"),
    ("Crop the image to to isolate the object labeled as", True, "MSCOCO (eval; sic)"),
    ("Select the portion of the image that follows the language expressions", True,
     "RefCOCO, RefCOCO-Matching queries and targets"),
    ("Select the portion of the image that answers the question", True, "Visual7W-Pointing"),
    ("Represent the given cropped image of the object", False, "grounding targets"),
)

#: First words of MMEB's instructions; the colon rule applies only to texts starting with one.
IMPERATIVES = ("Represent", "Find", "Retrieve", "Identify", "Select", "Given", "Crop")

_BY_LENGTH = sorted(((s.casefold(), s, c) for s, c, _ in INSTRUCTIONS), key=lambda e: -len(e[0]))


class Split(NamedTuple):
    instruction: str | None  # as written in the source, with its final "." or ":" when present
    content: str | None      # the rest, stripped; None when empty
    rule: str                # "known", "colon" or "none"


def split_instruction(text: str | None) -> Split:
    """Split ``text`` (placeholder included or not) by the rule of this module's docstring."""
    text = (text or "").replace(PLACEHOLDER, " ").strip()
    folded = text.casefold()
    for stem, _, takes_content in _BY_LENGTH:
        if not folded.startswith(stem):
            continue
        end = len(stem)
        if end < len(text) and text[end] in ".:":
            end += 1
        if end < len(text) and not text[end].isspace():
            continue  # a longer word, e.g. "images"
        rest = text[end:].strip()
        if rest and not takes_content:
            continue
        return Split(text[:end], rest or None, "known")
    first_line = text.split("\n", 1)[0]
    if text.split(" ", 1)[0] in IMPERATIVES and ": " in first_line + " ":
        head, _, rest = text.partition(":")
        return Split(head.strip() + ":", rest.strip() or None, "colon")
    return Split(None, text or None, "none")
