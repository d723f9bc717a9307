"""The paper preset has exactly the released checkpoint's tensor names and shapes."""

from __future__ import annotations

import json

import pytest

from xwam_model import XWAMConfig
from xwam_model.checkpoint import build_on_meta


@pytest.fixture(scope="module")
def manifest(fixtures_dir) -> dict:
    return json.loads((fixtures_dir / "xwam_paper_state_dict_manifest.json").read_text())


def test_paper_preset_names_and_shapes_equal_the_manifest(manifest):
    model = build_on_meta(XWAMConfig.preset("paper"))
    ours = {name: list(tensor.shape) for name, tensor in model.state_dict().items()}
    assert len(manifest["tensors"]) == 1115
    missing = sorted(set(manifest["tensors"]) - set(ours))
    extra = sorted(set(ours) - set(manifest["tensors"]))
    assert (missing, extra) == ([], [])
    assert list(ours.items()) == list(manifest["tensors"].items())  # order too
    assert (
        sum(tensor.numel() for tensor in model.state_dict().values()) == manifest["num_parameters"]
    )


def test_paper_preset_is_the_manifest_configuration(manifest):
    assert XWAMConfig.preset("paper").to_reference_dict() == manifest["config"]
    assert XWAMConfig.from_reference_dict(manifest["config"]) == XWAMConfig.preset("paper")
