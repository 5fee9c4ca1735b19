"""A saved model directory loads only when every file of the stage output verifies against its manifest;
a damaged checkpoint without a manifest fails naming the weight file, not with a bare safetensors message."""
from __future__ import annotations

import re
import shutil

import pytest
from omegaconf import OmegaConf

from uniembed.artifacts import MANIFEST_NAME, ArtifactError, atomic_path, write_json
from uniembed.embed.cache import fingerprint_model_dir
from uniembed.model import loading
from uniembed.model.loading import load_for_embedding, load_for_generation, set_bidirectional
from uniembed.model.processor import load_processor
from uniembed.model.saving import write_model_files
from uniembed.stages.judge import open_backend
from uniembed.train.lora import apply_lora
from uniembed.train.settings import LoraSettings


@pytest.fixture
def reranker_output(tiny_models, tmp_path):
    """``<tag>/adapter`` + ``<tag>/model`` (merged) + summary, written the way ``RerankTask.save`` writes them."""
    base = tiny_models["qwen2_vl"]
    model = apply_lora(set_bidirectional(load_for_generation(base), False), LoraSettings(r=4))
    out = tmp_path / "results" / "default" / "models" / "reranker_pointwise"
    with atomic_path(out, directory=True, manifest=True) as tmp:
        model.save_pretrained(tmp / "adapter")
        write_model_files(model.merge_and_unload().eval(), load_processor(base), tmp / "model")
        write_json({"finished": True}, tmp / "training_summary.json")
    return out


def _truncate(path, keep: int | None = None) -> tuple[int, int]:
    data = path.read_bytes()
    keep = len(data) // 2 if keep is None else keep
    path.write_bytes(data[:keep])
    return keep, len(data)


def test_an_intact_output_loads_every_way(reranker_output, tiny_models):
    assert (reranker_output / MANIFEST_NAME).is_file()
    load_for_generation(reranker_output / "model")
    load_for_embedding(reranker_output / "model")
    load_for_generation(tiny_models["qwen2_vl"], reranker_output / "adapter")
    load_processor(reranker_output / "model")
    assert fingerprint_model_dir(reranker_output / "model", full=True)


def test_a_truncated_adapter_beside_the_merged_model_fails_naming_it(reranker_output, tiny_models):
    adapter = reranker_output / "adapter" / "adapter_model.safetensors"
    found, expected = _truncate(adapter)
    words = re.escape(f"{adapter}: size {found} bytes, the manifest written at save time says {expected} "
                      f"(truncated or replaced); rerun the stage that writes {reranker_output}")
    with pytest.raises(ArtifactError, match=words):
        load_for_generation(reranker_output / "model")  # only model/ is read, yet the whole output must verify
    with pytest.raises(ArtifactError, match=words):
        load_for_generation(tiny_models["qwen2_vl"], reranker_output / "adapter")
    with pytest.raises(ArtifactError, match=words):
        load_processor(reranker_output / "model")
    with pytest.raises(ArtifactError, match=words):
        fingerprint_model_dir(reranker_output / "model", full=True)
    judge = OmegaConf.create({"backend": "transformers", "batch_size": 2})
    with pytest.raises(ArtifactError, match=words), open_backend(judge, str(reranker_output / "model"), "cpu"):
        pass


def test_a_truncated_merged_model_fails_naming_it(reranker_output):
    weights = reranker_output / "model" / "model.safetensors"
    found, expected = _truncate(weights)
    with pytest.raises(ArtifactError, match=re.escape(f"{weights}: size {found} bytes, the manifest written at save "
                                                      f"time says {expected} (truncated or replaced)")):
        load_for_embedding(reranker_output / "model")


@pytest.fixture
def downloaded(tiny_models, tmp_path):
    """A checkpoint from elsewhere: the tiny model's files without a manifest."""
    target = tmp_path / "Qwen2-VL-7B-Instruct"
    shutil.copytree(tiny_models["qwen2_vl"], target)
    (target / MANIFEST_NAME).unlink()
    return target


@pytest.mark.parametrize("keep", [None, 5], ids=["half", "header_too_small"])
def test_a_truncated_checkpoint_without_manifest_fails_naming_the_file(downloaded, keep):
    weights = downloaded / "model.safetensors"
    _truncate(weights, keep)
    with pytest.raises(ArtifactError, match=re.escape(f"{weights}: unreadable model weights (SafetensorError")) as error:
        load_for_generation(downloaded)
    assert f"{downloaded} has no {MANIFEST_NAME}" in str(error.value)


def test_an_error_reading_the_weights_names_the_directory_and_files(downloaded, monkeypatch):
    """Past the header check, whatever ``from_pretrained`` raises while reading weights still names them."""
    monkeypatch.setattr(loading, "_check_readable", lambda path, what: None)
    _truncate(downloaded / "model.safetensors")
    with pytest.raises(ArtifactError, match=re.escape(f"{downloaded}: cannot read the model weights "
                                                      f"(files: model.safetensors): SafetensorError")):
        load_for_embedding(downloaded)


def test_a_truncated_adapter_without_manifest_fails_naming_it(reranker_output, tiny_models, tmp_path):
    adapter = tmp_path / "adapter-copy"
    shutil.copytree(reranker_output / "adapter", adapter)
    assert not (tmp_path / MANIFEST_NAME).exists()
    _truncate(adapter / "adapter_model.safetensors")
    with pytest.raises(ArtifactError, match=re.escape(f"{adapter / 'adapter_model.safetensors'}: unreadable adapter "
                                                      f"weights")):
        load_for_generation(tiny_models["qwen2_vl"], adapter)
