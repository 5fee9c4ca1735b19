"""The object task: under DDP two gloo processes train to the same weights as one process on the same global batches
(objects, objectness logits, global tokens and texts gathered; every process computes the global batch's loss)."""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from omegaconf import OmegaConf
from safetensors.torch import load_file

from uniembed.data.synthetic.scene_files import write_object_scenes
from uniembed.stages.curate_regions import run as curate_regions
from uniembed.train.objembed_task import gather_rows
from uniembed.train.trainer import TrainSettings, train_objects

SETTINGS = TrainSettings.from_dict({"seed": 0, "max_steps": 2, "batch_size": 4, "save_every": 100,
                                    "optimizer": {"lr": 1e-3, "warmup_steps": 0}, "lora": {"r": 4, "alpha": 8},
                                    "objective": {"name": "objembed", "num_proposals": 6, "roi_size": 3}})


@pytest.fixture(scope="module")
def region_tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("objects")
    write_object_scenes(root / "objects", seed=0, train_scenes=8, eval_scenes=4)
    spec = {"root": str(root / "objects"), "proposals": "proposals.json",
            "train": [{"file": "train.jsonl", "labels": "phrase"}, {"file": "train_categories.jsonl", "labels": "category"}]}
    curate_regions(OmegaConf.create({"data": {"regions": {"objects": spec}},
                                     "stage": {"name": "objects", "out_dir": str(root / "regions")}}))
    return root / "regions" / "train"


def test_rows_of_unequal_counts_come_back_in_process_order_without_padding():
    rows = torch.arange(6.0)[:, None]
    assert torch.equal(gather_rows(rows, (6,)), rows)   # one process: itself


def _worker(rank, port, model, regions, out, chunk_size):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    settings = TrainSettings.from_dict({**SETTINGS.as_dict(), "chunk_size": chunk_size})
    train_objects(settings, base_model=model, region_dir=regions, out_dir=f"{out}/model", checkpoint_dir=f"{out}/ckpt",
                  log_dir=f"{out}/tb", device="cpu", progress=False)
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize("chunk_size", [None, 1], ids=["whole", "gradcache"])
def test_two_processes_match_one(tmp_path, region_tables, tiny_qwen2vl, chunk_size):
    """With GradCache too (chunks of one image or text, every backward local, one average at the end)."""
    one = train_objects(SETTINGS, base_model=tiny_qwen2vl, region_dir=region_tables, out_dir=tmp_path / "one" / "model",
                        checkpoint_dir=tmp_path / "one" / "ckpt", log_dir=tmp_path / "one" / "tb", device="cpu",
                        progress=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(port, str(tiny_qwen2vl), str(region_tables), str(tmp_path / "two"), chunk_size), nprocs=2,
             join=True)
    for name in ("model.safetensors", "object_heads.safetensors"):
        a = load_file(str(tmp_path / "one" / "model" / "model" / name))
        b = load_file(str(tmp_path / "two" / "model" / "model" / name))
        assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-4, name
    assert one["step"] == 2 and one["num_images"] == 8


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, region_tables, tiny_qwen2vl):
    settings = TrainSettings.from_dict({**SETTINGS.as_dict(), "max_steps": 3, "save_every": 1})
    kwargs = dict(base_model=tiny_qwen2vl, region_dir=region_tables, device="cpu", progress=False)
    train_objects(settings, out_dir=tmp_path / "whole", checkpoint_dir=tmp_path / "c1", log_dir=tmp_path / "t1", **kwargs)
    stopped = train_objects(settings, out_dir=tmp_path / "resumed", checkpoint_dir=tmp_path / "c2",
                            log_dir=tmp_path / "t2", stop_after=1, **kwargs)
    assert stopped == {"finished": False, "step": 1} and not (tmp_path / "resumed").exists()
    train_objects(settings, out_dir=tmp_path / "resumed", checkpoint_dir=tmp_path / "c2", log_dir=tmp_path / "t2", **kwargs)
    for name in ("model.safetensors", "object_heads.safetensors"):
        a = load_file(str(tmp_path / "whole" / "model" / name))
        b = load_file(str(tmp_path / "resumed" / "model" / name))
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_gradcache_chunks_train_to_the_weights_of_whole_batches(tmp_path, region_tables, tiny_qwen2vl):
    """chunk_size 1: every image and every text its own forward, the cached gradients put back chunk by chunk."""
    kwargs = dict(base_model=tiny_qwen2vl, region_dir=region_tables, device="cpu", progress=False)
    train_objects(SETTINGS, out_dir=tmp_path / "whole", checkpoint_dir=tmp_path / "c1", log_dir=tmp_path / "t1", **kwargs)
    chunked = TrainSettings.from_dict({**SETTINGS.as_dict(), "chunk_size": 1})
    train_objects(chunked, out_dir=tmp_path / "chunks", checkpoint_dir=tmp_path / "c2", log_dir=tmp_path / "t2", **kwargs)
    for name in ("model.safetensors", "object_heads.safetensors"):
        a = load_file(str(tmp_path / "whole" / "model" / name))
        b = load_file(str(tmp_path / "chunks" / "model" / name))
        assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-4, name


def test_packed_chunks_unpack_to_the_outputs_in_image_order():
    from uniembed.embed.objects import ImageOutputs
    from uniembed.train.objembed_task import pack, unpack

    torch.manual_seed(0)
    parts = [ImageOutputs(torch.randn(k, 4), torch.randn(k), torch.randn(b, 4), torch.randn(b, 4), []) for k, b in
             ((3, 1), (5, 2))]
    back = unpack(torch.cat([pack(p) for p in parts]), ((3, 1), (5, 2)))
    assert torch.equal(back.objects, torch.cat([p.objects for p in parts]))
    assert torch.equal(back.iou_logits, torch.cat([p.iou_logits for p in parts]))
    assert torch.equal(back.coarse, torch.cat([p.coarse for p in parts]))
    assert torch.equal(back.detailed, torch.cat([p.detailed for p in parts]))


def test_the_deepspeed_backend_is_refused_for_the_object_task(tmp_path, region_tables, tiny_qwen2vl):
    settings = TrainSettings.from_dict({**SETTINGS.as_dict(), "backend": "deepspeed_zero2"})
    with pytest.raises(ValueError, match="ddp only"):
        train_objects(settings, base_model=tiny_qwen2vl, region_dir=region_tables, out_dir=tmp_path / "m",
                      checkpoint_dir=tmp_path / "c", log_dir=tmp_path / "t", device="cpu", progress=False)
