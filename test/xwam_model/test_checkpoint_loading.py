"""Checkpoint formats: project format, Lightning .ckpt, safetensors (single, sharded), Wan base."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from xwam_model import (
    StateDictMismatchError,
    XWAMConfig,
    XWAMTransformer,
    load_pretrained,
    load_wan_base,
    load_xwam_checkpoint,
)
from xwam_model.checkpoint import XWAM_ONLY_MODULES, read_config

NORMALIZATION = {"actions": {"q01": [-1.0] * 7, "q99": [1.0] * 7}, "views": ["left", "right"]}


@pytest.fixture(scope="module")
def tiny_state(fixtures_dir) -> dict[str, torch.Tensor]:
    return load_file(fixtures_dir / "tiny_weights.safetensors")


@pytest.fixture(scope="module")
def tiny_config(reference_config) -> XWAMConfig:
    return XWAMConfig.from_reference_dict(reference_config)


def _assert_same_weights(model: XWAMTransformer, state: dict[str, torch.Tensor]) -> None:
    loaded = model.state_dict()
    assert loaded.keys() == state.keys()
    for name, tensor in state.items():
        assert not loaded[name].is_meta, name
        assert torch.equal(loaded[name], tensor), name


@torch.no_grad()
def test_project_format_round_trip(tmp_path, reference_model, reference_inputs):
    reference_model.save_pretrained(tmp_path / "run", normalization=NORMALIZATION)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "config.json",
        "model.safetensors",
        "normalization.json",
    ]
    loaded = load_pretrained(tmp_path / "run")
    assert loaded.normalization == NORMALIZATION
    assert loaded.model.config == reference_model.config
    _assert_same_weights(loaded.model, reference_model.state_dict())
    assert torch.equal(
        loaded.model(**reference_inputs).video, reference_model(**reference_inputs).video
    )

    again = XWAMTransformer.from_pretrained(tmp_path / "run")
    _assert_same_weights(again, reference_model.state_dict())


def test_project_format_without_statistics_and_overwriting_stale_ones(tmp_path, reference_model):
    reference_model.save_pretrained(tmp_path, normalization=NORMALIZATION)
    reference_model.save_pretrained(tmp_path)
    assert load_pretrained(tmp_path).normalization is None


def test_project_config_json_is_readable_and_versioned(tmp_path, reference_model):
    reference_model.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["format"] == "xwam-transformer" and data["format_version"] == 1
    assert data["dim"] == 96 and data["actions_per_frame"] == 2
    data["format_version"] = 99
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="format_version 99"):
        read_config(tmp_path)


def test_reference_config_json_in_a_directory_is_understood(tmp_path, reference_config, tiny_state):
    (tmp_path / "config.json").write_text(json.dumps(reference_config))
    save_file(tiny_state, tmp_path / "weights.safetensors")
    model = load_xwam_checkpoint(tmp_path)
    _assert_same_weights(model, tiny_state)


def test_lightning_ckpt_with_model_prefix(tmp_path, tiny_config, tiny_state):
    checkpoint = {
        "epoch": 3,
        "global_step": 1200,
        "state_dict": {
            **{f"model.{name}": tensor for name, tensor in tiny_state.items()},
            "ema.shadow": torch.zeros(3),  # other LightningModule members are not the model's
        },
    }
    torch.save(checkpoint, tmp_path / "last.ckpt")
    model = load_xwam_checkpoint(tmp_path / "last.ckpt", tiny_config)
    _assert_same_weights(model, tiny_state)
    assert not model.training


def test_sharded_safetensors_with_index(tmp_path, tiny_config, tiny_state):
    names = sorted(tiny_state)
    shards = {
        "model-00001-of-00002.safetensors": names[::2],
        "model-00002-of-00002.safetensors": names[1::2],
    }
    weight_map = {}
    for shard, shard_names in shards.items():
        save_file({name: tiny_state[name] for name in shard_names}, tmp_path / shard)
        weight_map.update(dict.fromkeys(shard_names, shard))
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))

    for path in (index, tmp_path):  # the index itself or the directory holding it
        model = load_xwam_checkpoint(path, tiny_config)
        _assert_same_weights(model, tiny_state)


def test_single_safetensors_with_model_prefix_and_dtype(tmp_path, tiny_config, tiny_state):
    save_file({f"model.{k}": v for k, v in tiny_state.items()}, tmp_path / "x.safetensors")
    model = load_xwam_checkpoint(tmp_path / "x.safetensors", tiny_config, dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    assert torch.equal(model.head.head.weight, tiny_state["head.head.weight"].bfloat16())


def test_strict_loading_reports_every_problem_at_once(tmp_path, tiny_config, tiny_state):
    broken = dict(tiny_state)
    del broken["blocks.1.self_attn.q.weight"]
    broken["blocks.9.ffn.0.weight"] = torch.zeros(2)
    broken["head.head.bias"] = torch.zeros(31)
    save_file(broken, tmp_path / "broken.safetensors")
    with pytest.raises(StateDictMismatchError) as caught:
        load_xwam_checkpoint(tmp_path / "broken.safetensors", tiny_config)
    error = caught.value
    assert error.missing == ["blocks.1.self_attn.q.weight"]
    assert error.unexpected == ["blocks.9.ffn.0.weight"]
    assert error.wrong_shapes == {"head.head.bias": ((31,), (32,))}
    message = str(error)
    for text in (
        "1 missing keys",
        "1 unexpected keys",
        "1 wrong shapes",
        "checkpoint [31], model [32]",
    ):
        assert text in message


def test_strict_error_lists_are_capped(tmp_path, tiny_config):
    save_file({"only.this": torch.zeros(1)}, tmp_path / "empty.safetensors")
    with pytest.raises(StateDictMismatchError, match=r"\.\.\. and \d+ more"):
        load_xwam_checkpoint(tmp_path / "empty.safetensors", tiny_config)


def test_unknown_checkpoint_type_and_missing_path(tmp_path, tiny_config):
    (tmp_path / "weights.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="unknown checkpoint type"):
        load_xwam_checkpoint(tmp_path / "weights.npz", tiny_config)
    with pytest.raises(ValueError, match="no such checkpoint"):
        load_xwam_checkpoint(tmp_path / "absent.ckpt", tiny_config)


def test_wan_base_weights_initialise_the_xwam_modules(tmp_path, tiny_config, tiny_state):
    base = {k: v for k, v in tiny_state.items() if not k.startswith(XWAM_ONLY_MODULES)}
    save_file(base, tmp_path / "diffusion_pytorch_model.safetensors")
    torch.manual_seed(0)
    model, summary = load_wan_base(tmp_path, tiny_config)

    state = model.state_dict()
    for name, tensor in base.items():
        assert torch.equal(state[name], tensor), name
    fork = tiny_config.num_layers - tiny_config.num_depth_layers
    for i, depth_block in enumerate(model.depth_blocks):
        for name, tensor in depth_block.state_dict().items():
            source = base[f"blocks.{fork + i}.{name}"]
            assert torch.equal(tensor, source) and tensor.data_ptr() != source.data_ptr()
    assert torch.equal(model.extra_heads[0].head.weight, base["head.head.weight"])
    assert torch.equal(model.view_embedding.weight, torch.zeros(2, 96))
    assert all(not p.is_meta and torch.isfinite(p).all() for p in model.parameters())
    assert model.action_encoder[0].weight.abs().sum() > 0

    assert sorted(summary.loaded) == sorted(base)
    assert summary.copied == {
        "extra_blocks.0.0": "blocks.2",
        "extra_blocks.0.1": "blocks.3",
        "extra_heads.0": "head",
    }
    assert set(summary.initialised) == {
        "view_embedding",
        "action_encoder",
        "action_decoder",
        "proprio_encoder",
        "proprio_decoder",
    }
    assert "copied extra_heads.0 <- head" in str(summary)


def test_wan_base_loading_is_strict_about_the_backbone(tmp_path, tiny_config, tiny_state):
    base = {k: v for k, v in tiny_state.items() if not k.startswith(XWAM_ONLY_MODULES)}
    del base["time_projection.1.bias"]
    base["img_emb.proj.0.weight"] = torch.zeros(4)
    save_file(base, tmp_path / "base.safetensors")
    with pytest.raises(StateDictMismatchError) as caught:
        load_wan_base(tmp_path / "base.safetensors", tiny_config)
    assert caught.value.missing == ["time_projection.1.bias"]
    assert caught.value.unexpected == ["img_emb.proj.0.weight"]
