"""`build_policy`: what a model configuration's fields make of the policy."""

import pytest
import torch

from xwam_ros.config import ConfigError
from xwam_ros.config.model import load_model_config
from xwam_ros.policy_loader import build_policy


def _model_yaml(tmp_path, extra: str = ""):
    path = tmp_path / "model.yaml"
    path.write_text(f"description: tiny\npreset: tiny\nimagine_every_n_chunks: 1\n{extra}")
    return path


def test_imagination_dtype_decodes_imagined_futures_with_a_copy_of_the_vae(tmp_path):
    plain = build_policy(load_model_config(_model_yaml(tmp_path)))
    assert plain.imagination_vae is plain.vae
    halved = build_policy(load_model_config(_model_yaml(tmp_path, "imagination_dtype: bfloat16\n")))
    assert halved.imagination_vae.dtype == torch.bfloat16
    assert halved.vae.dtype == torch.float32  # observations are still encoded in float32
    same = build_policy(load_model_config(_model_yaml(tmp_path, "imagination_dtype: float32\n")))
    assert same.imagination_vae is same.vae  # no second copy of the same weights


def test_an_imagination_dtype_other_than_float32_or_bfloat16_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"imagination_dtype: expected one of \['float32', "):
        load_model_config(_model_yaml(tmp_path, "imagination_dtype: float16\n"))
