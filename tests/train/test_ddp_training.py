"""DDP for real: two gloo processes train to the same weights as one process on the same global batches."""
import os
import socket

import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from uniembed.train.trainer import _global_order, train_contrastive

from .settings import INFO_NCE, make_settings

SETTINGS = make_settings(max_steps=3, save_every=100, objective={**INFO_NCE, "bidirectional": True})


def test_gathered_candidates_are_put_back_in_global_order():
    # rank-major gather: [p0 p1 n0 n1 n2 n3 | p2 p3 n4 n5 n6 n7] -> [p0 p1 p2 p3 | n0 ... n7]
    assert _global_order((2, 4), 2).tolist() == [0, 1, 6, 7, 2, 3, 4, 5, 8, 9, 10, 11]


def _worker(rank, port, model, curated, out):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    train_contrastive(SETTINGS, base_model=model, curated_dir=curated, out_dir=f"{out}/model", checkpoint_dir=f"{out}/ckpt",
                      log_dir=f"{out}/tb", device="cpu", progress=False)
    torch.distributed.destroy_process_group()


def test_two_processes_match_one(tmp_path, small_world, tiny_qwen2vl):
    curated = small_world["curated"]["mbeir"]
    one = train_contrastive(SETTINGS, base_model=tiny_qwen2vl, curated_dir=curated, out_dir=tmp_path / "one" / "model",
                            checkpoint_dir=tmp_path / "one" / "ckpt", log_dir=tmp_path / "one" / "tb", device="cpu",
                            progress=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(port, str(tiny_qwen2vl), str(curated), str(tmp_path / "two")), nprocs=2, join=True)
    a = load_file(str(tmp_path / "one" / "model" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "two" / "model" / "model" / "model.safetensors"))
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    summary = (tmp_path / "two" / "model" / "training_summary.json").read_text()
    assert '"step": 3' in summary and one["step"] == 3
