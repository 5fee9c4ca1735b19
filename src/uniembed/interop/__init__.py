"""Interchange with other projects' released data (UniME-V2's judged training JSON).

Layering: this package may import ``uniembed.data``, ``uniembed.mine.schemas`` and ``uniembed.artifacts``,
never the stages, the trainer or the judge.
"""
from .reader import import_unime_v2_json, read_unime_v2_json
from .writer import export_unime_v2_json

__all__ = ["import_unime_v2_json", "read_unime_v2_json", "export_unime_v2_json"]
