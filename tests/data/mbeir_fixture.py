"""Write a miniature M-BEIR tree (UniIR layout) from Python records, for reader tests."""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

HEADER = "query_modality\tcand_modality\tdataset_name\tdataset_id\tprompt_1\tprompt_2\tprompt_3\tprompt_4\n"


def png(path: Path, color=(200, 30, 30)) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), color).save(path)
    return str(path)


def write_jsonl(path: Path, rows: list, raw_tail: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + raw_tail)
    return path


def cand(did, txt=None, img=None, modality=None):
    modality = modality or ("image,text" if txt and img else "image" if img else "text")
    return {"did": did, "txt": txt, "img_path": img, "modality": modality, "src_content": None}


def query(qid, task_id, txt=None, img=None, pos=(), neg=(), modality=None):
    modality = modality or ("image,text" if txt and img else "image" if img else "text")
    return {"qid": qid, "query_txt": txt, "query_img_path": img, "query_modality": modality,
            "query_src_content": None, "pos_cand_list": list(pos), "neg_cand_list": list(neg), "task_id": task_id}


def build(root: Path, test_queries: list, pool: list, train_queries: list | None = None) -> Path:
    """A dataset 'Toy' (id 9) with task 0 (t->i) and 3 (i->t) prompts; one local test pool."""
    (root / "instructions").mkdir(parents=True, exist_ok=True)
    (root / "instructions" / "query_instructions.tsv").write_text(
        HEADER
        + "text\timage\tToy\t9\tFind the picture.\tShow me an image.\tRetrieve an image.\tLocate the image.\n"
        + "image\ttext\tToy\t9\tDescribe it.\tCaption it.\tFind a caption.\tRetrieve text.\n"
    )
    for i in range(4):
        png(root / "mbeir_images" / "toy" / f"{i}.png", (60 * i, 100, 100))
    write_jsonl(root / "cand_pool" / "local" / "mbeir_toy_task0_cand_pool.jsonl", pool)
    write_jsonl(root / "cand_pool" / "global" / "mbeir_union_test_cand_pool.jsonl", pool)
    write_jsonl(root / "query" / "test" / "mbeir_toy_task0_test.jsonl", test_queries)
    if train_queries is not None:
        write_jsonl(root / "query" / "train" / "mbeir_toy_train.jsonl", train_queries)
        write_jsonl(root / "cand_pool" / "global" / "mbeir_union_train_cand_pool.jsonl", pool)
    return root


def good_pool():
    return [cand(f"9:{i}", img=f"mbeir_images/toy/{i}.png") for i in range(4)]
