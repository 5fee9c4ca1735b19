"""recipe.judge.engine: one section rendered as vllm.LLM keywords, server flags and the engine's
environment; checked types; defaults that pass nothing (vLLM's own defaults, unchanged resume keys);
and the ``__main__`` guard of every entry point that builds a vLLM engine."""
import ast
import sys
import types
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from uniembed.config import compose_config
from uniembed.config_schema import ConfigTypeError, validate_groups
from uniembed.judge.engine import JudgeEngine
from uniembed.judge.engine import engine_env, engine_settings, llm_kwargs, score_settings, server_args
from uniembed.judge.vllm_client import VllmServer
from uniembed.stages import judge as judge_stage

ROOT = Path(__file__).resolve().parents[2]
CPU = {"dtype": "float32", "max_model_len": 2048, "tensor_parallel_size": 1, "gpu_memory_utilization": 0.3,
       "enforce_eager": True, "cpu_kvcache_space": 2}


def test_defaults_pass_nothing_so_vllm_keeps_its_own():
    for engine in (engine_settings(None), engine_settings({}), JudgeEngine()):
        assert (llm_kwargs(engine), server_args(engine), engine_env(engine), score_settings(engine)) == ({}, [], {}, {})
    recipe = compose_config([], ROOT / "config").recipe.judge
    assert engine_settings(OmegaConf.to_container(recipe.engine)) == JudgeEngine()


def test_each_setting_reaches_the_engine_the_server_and_the_resume_key():
    engine = engine_settings(CPU)
    assert llm_kwargs(engine) == {k: v for k, v in CPU.items() if k != "cpu_kvcache_space"}
    assert server_args(engine) == ["--dtype", "float32", "--max-model-len", "2048", "--tensor-parallel-size", "1",
                                   "--gpu-memory-utilization", "0.3", "--enforce-eager"]
    assert engine_env(engine) == {"VLLM_CPU_KVCACHE_SPACE": "2"}
    # memory settings change no score: a rerun with more KV cache resumes the same shards
    assert score_settings(engine) == {"dtype": "float32", "max_model_len": 2048, "tensor_parallel_size": 1,
                                      "enforce_eager": True}


@pytest.mark.parametrize("section, message", [
    ({"dtpye": "float32"}, r"recipe.judge.engine: unknown key\(s\) \['dtpye'\]"),
    ({"enforce_eager": "yes"}, r"recipe.judge.engine.enforce_eager: expected bool, got 'yes'"),
    ({"cpu_kvcache_space": 0.5}, r"recipe.judge.engine.cpu_kvcache_space: expected int, got 0.5"),
    ({"max_model_len": 0}, r"recipe.judge.engine.max_model_len: expected a value >= 1, got 0"),
    ({"gpu_memory_utilization": 1.5}, r"gpu_memory_utilization: expected a value > 0 and <= 1, got 1.5"),
])
def test_wrong_settings_are_named(section, message):
    with pytest.raises(ValueError, match=message):
        engine_settings(section)


def test_the_recipe_schema_checks_the_engine_section_at_parse_time():
    cfg = compose_config(["recipe.judge.engine.dtype=float32", "recipe.judge.engine.cpu_kvcache_space=1"],
                         ROOT / "config")
    validate_groups(cfg)
    cfg = compose_config(["recipe.judge.engine.enforce_eager=sometimes"], ROOT / "config")
    with pytest.raises(ConfigTypeError, match="recipe.judge.engine.enforce_eager: expected bool"):
        validate_groups(cfg)


# Prints its argv and the KV cache variable, then exits: VllmServer reports both from its log.
PRINTER = "import os, sys; print('argv', sys.argv[1:], 'kv', os.environ.get('VLLM_CPU_KVCACHE_SPACE')); sys.exit(4)"


def test_a_started_server_gets_the_engine_flags_and_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    server = VllmServer("/models/judge", command=[sys.executable, "-c", PRINTER], engine=engine_settings(CPU),
                        log_path=tmp_path / "serve.log", startup_timeout=30)
    assert server.settings["engine"] == score_settings(engine_settings(CPU))
    with pytest.raises(RuntimeError, match="exited with code 4") as error:
        with server:
            pass
    assert "'--model', '/models/judge'" in str(error.value) and "kv 2" in str(error.value)
    assert "'--enforce-eager'" in str(error.value) and "'--dtype', 'float32'" in str(error.value)
    assert "engine" not in VllmServer("/models/judge").settings  # default engine: resume keys unchanged


def test_the_stage_builds_the_offline_engine_from_the_recipe(monkeypatch, tiny_qwen2vl):
    engines = []

    class LLM:
        def __init__(self, model, **kwargs):
            engines.append((kwargs, dict(__import__("os").environ)))

        def get_tokenizer(self):
            from uniembed.model.processor import load_processor
            return load_processor(tiny_qwen2vl).tokenizer

    fake = types.ModuleType("vllm")
    fake.LLM, fake.SamplingParams = LLM, lambda **kw: types.SimpleNamespace(**kw)
    monkeypatch.setitem(sys.modules, "vllm", fake)
    j = OmegaConf.create({"backend": "vllm_offline", "top_logprobs": 20, "engine": CPU})
    with judge_stage.open_backend(j, str(tiny_qwen2vl), "cpu") as backend:
        kwargs, env = engines[0]
        assert {k: kwargs[k] for k in llm_kwargs(engine_settings(CPU))} == llm_kwargs(engine_settings(CPU))
        assert env["VLLM_CPU_KVCACHE_SPACE"] == "2" and kwargs["trust_remote_code"] is False
        assert "gpu_memory_utilization" not in backend.settings["engine"]
        yes, no = backend.yes_id, backend.no_id
        assert vars(backend.sampling) == {"max_tokens": 1, "temperature": 0.0, "logprob_token_ids": [yes, no]}


@pytest.mark.parametrize("path", ["src/uniembed/stages/judge.py", "benchmarks/judge_prefix_cache.py"])
def test_entry_points_that_build_an_engine_run_only_under_the_main_guard(path):
    """vLLM spawns its engine process, which imports ``__main__`` again: the module level must not run."""
    tree = ast.parse((ROOT / path).read_text())
    guards = [node for node in tree.body
              if isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'"]
    assert len(guards) == 1, f"{path}: expected one `if __name__ == \"__main__\":` guard"
    calls = [ast.unparse(node) for node in tree.body if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)]
    assert not calls, f"{path}: module-level calls run again in the engine process: {calls}"


def test_a_dying_servers_root_cause_is_reported_above_its_traceback(tmp_path):
    script = ("import sys; print('(EngineCore pid=7) ValueError: 64 KV blocks cannot hold one 32768-token request')\n"
              "for i in range(60): print(f'  File \"x.py\", line {i}, in f')\n"
              "print('RuntimeError: Engine core initialization failed.'); sys.exit(1)")
    with pytest.raises(RuntimeError, match=r"(?s)exited with code 1.*error lines:\n.*ValueError: 64 KV blocks"
                                           r".*\.\.\.\n.*line 59.*Engine core initialization failed"):
        with VllmServer("m", command=[sys.executable, "-c", script], log_path=tmp_path / "s.log", startup_timeout=30):
            pass
