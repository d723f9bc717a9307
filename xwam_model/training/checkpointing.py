"""What a run writes: model checkpoints the model node loads, and training state to resume.

- `checkpoint-<step>/` and `final/`: the project format (`model.safetensors`, `config.json`,
  `normalization.json`, `policy.json`), gathered to full tensors on rank 0 whatever the
  sharding; `model.yaml` beside them is a model configuration naming `final/`, ready for
  `model_config:=` (or `--model`).
- `state/step-<step>/`: model and optimizer in torch.distributed.checkpoint's sharded format
  (each rank writes its own shard: no rank ever holds the whole optimizer of a large model),
  plus the scheduler, the data position and every rank's random state. A `COMPLETE` marker
  is written last: a run killed while saving resumes from the previous state.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
import yaml
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)

from ..checkpoint import build_on_meta, save_pretrained
from ..configuration import XWAMConfig
from ..normalization import Normalization
from ..policy import PolicySettings
from .distributed import Process, barrier

STATE_FOLDER = "state"
COMPLETE_MARKER = "COMPLETE"
FINAL_NAME = "final"
MODEL_YAML = "model.yaml"


def save_model(
    model: nn.Module,
    architecture: XWAMConfig,
    normalization: Normalization,
    settings: PolicySettings,
    directory: Path,
    process: Process,
) -> None:
    """Write the project-format checkpoint (a collective: every rank must call it)."""
    full = get_model_state_dict(
        model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
    )
    if process.is_main:
        plain = build_on_meta(architecture)
        plain.load_state_dict(full, strict=True, assign=True)
        temporary = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(temporary, ignore_errors=True)
        save_pretrained(plain, temporary, normalization.to_dict())
        settings.save(temporary)
        shutil.rmtree(directory, ignore_errors=True)
        temporary.rename(directory)
    barrier(process)


def write_model_yaml(
    output: Path,
    preset: str,
    vae: str,
    text_encoder: str,
    weights_seed: int,
    instruction: str,
    description: str,
) -> Path:
    """A model configuration (config/model/*.yaml schema) that runs `final/`."""
    data = {
        "description": description,
        "checkpoint": FINAL_NAME,
        "preset": preset,
        "vae": str(Path(vae).resolve()) if vae else "",
        "text_encoder": str(Path(text_encoder).resolve()) if text_encoder else "",
        "device": "cpu",
        "dtype": "float32",
        "weights_seed": weights_seed,
        "instruction": instruction,
    }
    path = output / MODEL_YAML
    path.write_text(
        "# Written by xwam train: runs the final checkpoint of this run (set device: cuda on a "
        "GPU).\n" + yaml.safe_dump(data, sort_keys=False)
    )
    return path


def save_state(
    output: Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    extra: dict[str, Any],
    generator: torch.Generator,
    process: Process,
) -> Path:
    """Write the training state of `step` (a collective); `generator` is this rank's noise
    generator."""
    folder = output / STATE_FOLDER / f"step-{step:07d}"
    model_state, optimizer_state = get_state_dict(model, optimizer)
    with _single_process_quiet():
        dcp.save({"model": model_state, "optim": optimizer_state}, checkpoint_id=str(folder))
    torch.save(
        {**_random_state(), "generator": generator.get_state()}, folder / f"rng-{process.rank}.pt"
    )
    barrier(process)
    if process.is_main:
        torch.save(extra, folder / "trainer.pt")
        (folder / COMPLETE_MARKER).write_text(json.dumps({"step": step}) + "\n")
    barrier(process)
    return folder


def latest_state(output: Path) -> Path | None:
    """The newest complete training state in a run folder, if any."""
    folders = sorted((output / STATE_FOLDER).glob("step-*"))
    complete = [f for f in folders if (f / COMPLETE_MARKER).is_file()]
    return complete[-1] if complete else None


def load_state(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    process: Process,
) -> dict[str, Any]:
    """Restore model, optimizer and this rank's random state; the trainer's extra state."""
    model_state, optimizer_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optim": optimizer_state}
    with _single_process_quiet():
        dcp.load(state, checkpoint_id=str(folder))
    set_state_dict(
        model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"]
    )
    random_file = folder / f"rng-{process.rank}.pt"
    if random_file.is_file():  # absent when resuming on more ranks than saved it
        saved = torch.load(random_file, weights_only=False)
        _set_random_state(saved)
        generator.set_state(saved["generator"])
    return torch.load(folder / "trainer.pt", weights_only=False)


def prune(output: Path, keep: int, process: Process) -> None:
    """Keep the newest `keep` checkpoints and training states."""
    if not process.is_main:
        return
    for pattern in ("checkpoint-*", f"{STATE_FOLDER}/step-*"):
        folders = sorted(p for p in output.glob(pattern) if not p.name.endswith(".tmp"))
        for old in folders[:-keep]:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _single_process_quiet():
    """torch.distributed.checkpoint warns when used without a process group: intended here (a
    single-process run writes the same format)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


def _random_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_random_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
