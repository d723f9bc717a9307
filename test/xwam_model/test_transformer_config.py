"""`XWAMConfig`: presets, (de)serialisation and validation messages."""

from __future__ import annotations

import json

import pytest

from xwam_model import ConfigError, XWAMConfig, XWAMTransformer


@pytest.mark.parametrize("name", XWAMConfig.preset_names())
def test_presets_round_trip_through_json(name):
    config = XWAMConfig.preset(name)
    assert XWAMConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_reference_keywords_map_to_the_tiny_preset(reference_config):
    config = XWAMConfig.from_reference_dict(reference_config)
    assert config == XWAMConfig.preset("tiny")
    assert config.to_reference_dict() == reference_config


def test_tiny_preset_is_about_a_million_parameters():
    model = XWAMTransformer(XWAMConfig.preset("tiny"))
    assert 0.5e6 < sum(p.numel() for p in model.parameters()) < 1.5e6


def test_preset_overrides_and_unknown_preset():
    assert XWAMConfig.preset("tiny", num_layers=6).num_layers == 6
    with pytest.raises(ConfigError, match="preset: expected one of"):
        XWAMConfig.preset("huge")


def test_rope_split_of_the_paper_head():
    config = XWAMConfig.preset("paper")
    assert config.head_dim == 128
    assert config.rope_axis_dims == (44, 42, 42)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dim": 100, "num_heads": 3}, r"dim: expected a multiple of num_heads \(3\), got 100"),
        ({"dim": 20, "num_heads": 4}, r"even head dimension of at least 6.*got 5"),
        ({"dim": 16, "num_heads": 4}, r"at least 6.*got 4"),
        ({"num_depth_layers": 5}, r"num_depth_layers: expected at most num_layers \(4\), got 5"),
        ({"num_depth_layers": -1}, r"num_depth_layers: expected an integer >= 0"),
        ({"patch_size": (1, 2)}, r"patch_size: expected 3 integers"),
        ({"patch_size": (1, 0, 2)}, r"patch_size: expected an integer >= 1"),
        ({"num_views": 0}, r"num_views: expected an integer >= 1, got 0"),
        ({"action_dim": 7.0}, r"action_dim: expected an integer"),
        ({"text_len": True}, r"text_len: expected an integer"),
        ({"qk_norm": "yes"}, r"qk_norm: expected true or false"),
        ({"eps": 0}, r"eps: expected a positive number"),
        ({"freq_dim": 33}, r"freq_dim: expected an even number"),
    ],
)
def test_invalid_values_are_refused_with_the_field_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        XWAMConfig.preset("tiny", **overrides)


def test_unknown_project_keys_are_refused():
    with pytest.raises(ConfigError, match=r"unknown config keys \['depth'\]"):
        XWAMConfig.from_dict({**XWAMConfig.preset("tiny").to_dict(), "depth": 2})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model_type": "t2v"}, r"model_type: only 'ti2v'"),
        ({"num_modalities": 3}, r"num_modalities: only 2 \(RGB \+ depth\)"),
        ({"window_size": [-1, -1]}, r"unknown reference config keys \['window_size'\]"),
        ({"num_extra_layers": 9}, r"num_depth_layers: expected at most num_layers"),
        ({"eps": None}, r"eps: expected a positive number"),
    ],
)
def test_unsupported_reference_values_are_refused(reference_config, change, message):
    with pytest.raises(ConfigError, match=message):
        XWAMConfig.from_reference_dict({**reference_config, **change})


def test_reference_export_needs_a_depth_branch():
    with pytest.raises(ConfigError, match="num_depth_layers"):
        XWAMConfig.preset("tiny", num_depth_layers=0).to_reference_dict()


def test_config_errors_are_value_errors():
    assert issubclass(ConfigError, ValueError)
    with pytest.raises(ValueError):
        XWAMConfig.preset("tiny", dim=97)


def test_reference_config_must_name_every_keyword(reference_config):
    partial = {k: v for k, v in reference_config.items() if k not in ("eps", "model_type")}
    with pytest.raises(ConfigError, match=r"missing keys \['eps', 'model_type'\]"):
        XWAMConfig.from_reference_dict(partial)
