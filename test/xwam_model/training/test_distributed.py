"""Beyond one process: `torchrun --nproc_per_node 2` on the CPU (gloo), with DDP and with FSDP2
(gradient checkpointing on), each rank training its own share of the clips, validation and
checkpoints collective. The two parallelisms must train the same model step for step."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from xwam_model.checkpoint import load_pretrained

TORCHRUN = Path(sys.executable).parent / "torchrun"


def torchrun(dataset: Path, output: Path, parallelism: str) -> list[dict]:
    flags = (
        f"--dataset {dataset} --output {output} --preset tiny --steps 3 --batch-size 2 "
        "--num-workers 0 --log-every 1 --val-every 3 --val-clips 2 --quiet "
        f"--gradient-checkpointing --parallelism {parallelism}"
    )
    command = [
        str(TORCHRUN),
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "xwam_model.training",
        *flags.split(),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # A session of its own: on a timeout the workers are killed with torchrun, not orphaned.
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        printed, _ = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        printed, _ = process.communicate()
    assert process.returncode == 0, printed[-5000:]
    return [json.loads(line) for line in (output / "train_log.jsonl").open()]


def test_ddp_and_fsdp2_over_two_processes_train_the_same_model(tiny_dataset, tmp_path):
    logs = {p: torchrun(tiny_dataset, tmp_path / p, p) for p in ("ddp", "fsdp")}
    for parallelism, log in logs.items():
        start = next(r for r in log if r.get("event") == "start")
        assert start["world_size"] == 2 and start["parallelism"] == parallelism
        assert [r["step"] for r in log if "loss" in r] == [1, 2, 3]
        assert "action_mse" in next(r["validation"] for r in log if "validation" in r)
        assert (tmp_path / parallelism / "state" / "step-0000003" / "COMPLETE").is_file()
    losses = {p: [r["loss"] for r in log if "loss" in r] for p, log in logs.items()}
    assert losses["ddp"] == pytest.approx(losses["fsdp"], rel=1e-4)
    ddp = load_pretrained(tmp_path / "ddp" / "final").model.state_dict()
    fsdp = load_pretrained(tmp_path / "fsdp" / "final").model.state_dict()  # gathered on rank 0
    assert all(torch.allclose(ddp[k], fsdp[k], atol=1e-5) for k in ddp)
