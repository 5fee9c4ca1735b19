"""How a training rule starts its processes, from the rule's resources (docs/slurm.md).

The SLURM profile gives a GPU rule ONE task holding all its GPUs (``workflow/rules/common.smk``
``rule_resources``: the plugin's ``gpu=N`` would run the script N times). The command then
starts its own workers:

* 0 or 1 GPU on one node: ``python`` (one process);
* N GPUs on one node: ``torchrun --standalone --nproc-per-node N`` (DDP, one process per GPU);
* M nodes: one task per node via ``srun --ntasks-per-node=1``, each running ``torchrun`` with a
  c10d rendezvous on the job's first node (``--rdzv-id`` = the SLURM job id).

The returned prefix is followed by ``-m uniembed.stages.<stage> ...`` (both python and torchrun
accept ``-m``).
"""
from __future__ import annotations

RDZV_PORT = 29500


def launch_command(spec: dict) -> str:
    gpus, nodes = int(spec.get("gpus") or 0), int(spec.get("nodes") or 1)
    if nodes > 1:
        if gpus < 1:
            raise ValueError("a multi-node training rule needs gpus >= 1 per node")
        head = '$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)'
        return (f"srun --ntasks-per-node=1 torchrun --nnodes={nodes} --nproc-per-node={gpus}"
                f" --rdzv-id=$SLURM_JOB_ID --rdzv-backend=c10d --rdzv-endpoint={head}:{RDZV_PORT}")
    if gpus > 1:
        return f"torchrun --standalone --nproc-per-node={gpus}"
    return "python"
