"""Public-format readers; each returns :class:`uniembed.data.curate.SourceRecords`.

``FORMATS`` maps the ``format`` key of a source in the data config to its reader; the other
keys of the source are the reader's keyword arguments.
"""
from .composed import read_circo, read_cirr, read_fashioniq
from .longcaption import read_sharegpt4v, read_urban1k
from .mbeir import read_mbeir
from .mmeb import read_mmeb
from .pairs import read_captions, read_nli
from .zeroshot import read_karpathy, read_sugarcrepe

FORMATS = {"mbeir": read_mbeir, "mmeb": read_mmeb, "nli_csv": read_nli, "captions": read_captions,
           "karpathy": read_karpathy, "sugarcrepe": read_sugarcrepe, "sharegpt4v": read_sharegpt4v,
           "urban1k": read_urban1k, "circo": read_circo, "cirr": read_cirr, "fashioniq": read_fashioniq}

__all__ = ["FORMATS", "read_mbeir", "read_mmeb", "read_nli", "read_captions", "read_karpathy", "read_sugarcrepe",
           "read_sharegpt4v", "read_urban1k", "read_circo", "read_cirr", "read_fashioniq"]
