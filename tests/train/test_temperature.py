"""The learnable temperature reproduces U-MARVEL's Table 12 trajectories (Finding 4)."""
import pytest
import torch
import yaml

from uniembed.train.objectives import make_objective
from uniembed.train.temperature import previous_temperature, write_final_temperature
from uniembed.train.trainer import TrainSettings, build_optimizer

from .settings import make_settings


def _recipe_stage(name):
    with open("config/recipe/umarvel_qwen2vl_7b.yaml") as f:
        stage = yaml.safe_load(f)["pretrain"]["stages"][name]
    stage.pop("source")
    return TrainSettings.from_dict(stage)


def _drive_down(settings: TrainSettings, steps: int) -> float:
    """Run the trainer's optimiser and schedule with a loss that always pushes tau down."""
    objective = make_objective(settings.objective)
    tau = objective.temperature
    dummy = torch.nn.Parameter(torch.zeros(3))
    optimizer, scheduler = build_optimizer(settings, [dummy], objective)
    for _ in range(steps):
        (tau() + dummy.sum()).backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    return tau.value


def test_7b_recipe_stage_1c_can_reach_table_12s_tau_within_its_steps():
    settings = _recipe_stage("mbeir")   # lr 4e-4, 290 steps, warmup 20, cosine
    assert settings.objective["learnable_temperature"] and settings.optimizer.lr == 4e-4
    assert _drive_down(settings, settings.max_steps) <= 0.0206


def test_log_parameterised_tau_could_not_have_reached_it():
    """Why tau itself is the parameter: Adam moves a parameter by ~lr per step in its own units."""
    settings = _recipe_stage("mbeir")
    log_tau = torch.nn.Parameter(torch.tensor([0.05]).log())
    optimizer = torch.optim.AdamW([log_tau], lr=settings.optimizer.lr, weight_decay=0.0)
    for _ in range(settings.max_steps):
        log_tau.exp().sum().backward()
        optimizer.step()
        optimizer.zero_grad()
    assert log_tau.exp().item() > 0.04


def test_temperature_has_its_own_group_without_weight_decay_and_optional_lr():
    settings = make_settings(max_steps=10, lr=1e-4, objective={"name": "info_nce", "learnable_temperature": True,
                                                                "temperature_lr": 5e-3})
    settings.optimizer.weight_decay = 0.1
    objective = make_objective(settings.objective)
    optimizer, _ = build_optimizer(settings, [torch.nn.Parameter(torch.zeros(2))], objective)
    group = [g for g in optimizer.param_groups if any(p is objective.temperature.tau for p in g["params"])]
    assert len(group) == 1 and group[0]["weight_decay"] == 0.0 and group[0]["lr"] == 5e-3
    assert optimizer.param_groups[0]["weight_decay"] == 0.1
    fixed = make_settings(objective={"name": "info_nce"})
    optimizer, _ = build_optimizer(fixed, [torch.nn.Parameter(torch.zeros(2))], make_objective(fixed.objective))
    assert len(optimizer.param_groups) == 1


def test_previous_temperature_round_trip_and_clear_error(tmp_path):
    write_final_temperature(tmp_path, 0.0206, True)
    assert previous_temperature(tmp_path) == pytest.approx(0.0206)
    with pytest.raises(ValueError, match="temperature: previous"):
        previous_temperature(tmp_path / "nowhere")
