"""Stage ``unime_v2_json``: UniME-V2's released judged training JSON <-> this project's tables.

    python -m uniembed.stages.unime_v2_json import --json F --image-root R --out-dir D \\
        [--source unime_v2] [--dataset NAME] [--image-workers N] [--max-quarantined-fraction X]
    python -m uniembed.stages.unime_v2_json export --hard-negatives P --curated-dir C --image-root R --out F

``import`` writes ``D/<source>/`` (curated tables, quarantine and ``summary.json``), ``D/hard_negatives.parquet``
(HARD_NEGATIVES with the judge's scores) and ``D/filter_summary.json``; train UniME-V2's soft-label
objective on it with ``python -m uniembed.stages.train --stage section train_hn --stage name <entry>
--stage curated_dir D --stage hard_negatives D/hard_negatives.parquet ...`` where the recipe entry has
``source: <source>``. ``export`` writes the filter's output (``hard_negatives.parquet`` + the curated
source directory it was mined from) as UniME-V2's JSON. Format notes: :mod:`uniembed.interop.unime_v2_json`.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from ..data.errors import SourceFormatError
from ..interop import export_unime_v2_json, import_unime_v2_json

log = logging.getLogger("uniembed.unime_v2_json")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m uniembed.stages.unime_v2_json", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="UniME-V2 JSON + image root -> curated source + hard_negatives.parquet")
    imp.add_argument("--json", required=True, help="the released JSON list (e.g. data/example_data.json)")
    imp.add_argument("--image-root", required=True, help="the folder image paths are relative to")
    imp.add_argument("--out-dir", required=True)
    imp.add_argument("--source", default="unime_v2", help="curated source name (the recipe entry's `source`)")
    imp.add_argument("--dataset", default=None, help="dataset name of every query (default: the source name)")
    imp.add_argument("--image-workers", type=int, default=1)
    imp.add_argument("--max-quarantined-fraction", type=float, default=None,
                     help="fail (writing nothing) when more than this share of the records is quarantined")
    exp = sub.add_parser("export", help="HARD_NEGATIVES + curated source -> UniME-V2 JSON")
    exp.add_argument("--hard-negatives", required=True, help="the filter's hard_negatives.parquet")
    exp.add_argument("--curated-dir", required=True, help="the curated source directory (holds queries.parquet)")
    exp.add_argument("--image-root", required=True, help="image paths are written relative to this folder")
    exp.add_argument("--out", required=True)
    return p


def run(args: argparse.Namespace) -> dict:
    if args.command == "import":
        return import_unime_v2_json(args.json, args.image_root, args.out_dir, source=args.source, dataset=args.dataset,
                                    image_workers=args.image_workers,
                                    max_quarantined_fraction=args.max_quarantined_fraction)
    return export_unime_v2_json(args.hard_negatives, args.curated_dir, args.image_root, args.out)


def main(argv=None) -> None:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        summary = run(args)
    except (SourceFormatError, ValueError, OSError) as error:
        raise SystemExit(f"unime_v2_json {args.command}: {error}") from None
    log.info("%s: %s", args.command, json.dumps({k: v for k, v in summary.items() if k != "params"}, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1:])
