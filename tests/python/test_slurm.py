"""The engine under a real Slurm cluster (slurm_cluster.py): executors
started with srun as steps of an allocation on two nodes in network
namespaces, GPUs from Slurm's GRES, nodes lost mid-job."""

from __future__ import annotations

import time

from slurm_cluster import CPUS_PER_NODE, GPUS_PER_NODE, NODES

def test_fixture_nodes_run_steps_with_their_gpus(slurm_cluster):
    # What the backend relies on: a step per task, each with a GPU of its
    # node's GRES, named by the node it runs on.
    p = slurm_cluster.run(["srun", "-N2", "-n4", "--gpus-per-task=1", "sh", "-c",
                           "echo $SLURMD_NODENAME $CUDA_VISIBLE_DEVICES"])
    seen = sorted(tuple(line.split()) for line in p.stdout.splitlines())
    assert seen == sorted((n, str(g)) for n in NODES for g in range(GPUS_PER_NODE))
    assert CPUS_PER_NODE == 2

def test_fixture_restarts_a_killed_node(slurm_cluster):
    slurm_cluster.kill_node(NODES[1])
    slurm_cluster.start_slurmd(NODES[1])
    slurm_cluster.wait_idle()
    p = slurm_cluster.run(["srun", "-w", NODES[1], "hostname"], timeout=30)
    assert p.returncode == 0
