"""Training rules launch one process, torchrun per node, or srun + torchrun across nodes."""
import pytest

from uniembed.launch import launch_command


def test_cpu_and_single_gpu_run_one_python_process():
    assert launch_command({}) == launch_command({"gpus": 1}) == "python"


def test_several_gpus_on_one_node_use_torchrun_standalone():
    assert launch_command({"gpus": 8}) == "torchrun --standalone --nproc-per-node=8"


def test_several_nodes_use_one_srun_task_per_node_and_a_c10d_rendezvous():
    command = launch_command({"gpus": 8, "nodes": 4})
    assert command.startswith("srun --ntasks-per-node=1 torchrun --nnodes=4 --nproc-per-node=8")
    assert "--rdzv-id=$SLURM_JOB_ID --rdzv-backend=c10d" in command and ":29500" in command
    with pytest.raises(ValueError, match="gpus >= 1"):
        launch_command({"nodes": 2})
