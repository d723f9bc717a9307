"""The tiny model reproduces the reference implementation's forward passes."""

from __future__ import annotations

import pytest
import torch

from xwam_model import TransformerOutput, XWAMTransformer

# The brief asks for 1e-4; the implementation agrees to ~1e-6, and a looser bound would not
# notice some wrong choices (a shifted action position moves outputs by only ~2e-4).
ATOL = 1e-5


def _assert_matches(output: TransformerOutput, forward_io: dict, prefix: str, depth: bool) -> None:
    names = {"video": "video", "actions": "actions", "proprio": "proprios"}
    if depth:
        names["depth"] = "depth"
    for ours, theirs in names.items():
        expected = forward_io[f"{prefix}.{theirs}"]
        actual = getattr(output, ours)
        assert actual.shape == expected.shape, ours
        assert actual.dtype == torch.float32, ours
        torch.testing.assert_close(actual, expected, atol=ATOL, rtol=0, msg=f"{prefix}.{theirs}")


@torch.no_grad()
def test_depth_on_matches_reference(reference_model, reference_inputs, forward_io):
    output = reference_model(**reference_inputs)
    _assert_matches(output, forward_io, "output", depth=True)


@torch.no_grad()
def test_depth_off_matches_reference_and_main_branch_is_untouched(
    reference_model, reference_inputs, forward_io
):
    with_depth = reference_model(**reference_inputs, run_depth=True)
    without = reference_model(**reference_inputs, run_depth=False)
    _assert_matches(without, forward_io, "output_nodepth", depth=False)
    assert without.depth is None
    for name in ("video", "actions", "proprio"):
        assert torch.equal(getattr(with_depth, name), getattr(without, name)), name


@torch.no_grad()
def test_guidance_matches_reference_and_leaves_depth_unguided(
    reference_model, reference_inputs, forward_io
):
    inputs = {**reference_inputs, "context": forward_io["input_cfg.context"]}
    guided = reference_model(**inputs, guidance=3.0)
    _assert_matches(guided, forward_io, "output_cfg3", depth=True)
    unguided = reference_model(**reference_inputs)
    torch.testing.assert_close(guided.depth, unguided.depth, atol=1e-6, rtol=0)
    guided_off = reference_model(**inputs, guidance=3.0, run_depth=False)
    assert guided_off.depth is None
    for name in ("video", "actions", "proprio"):
        assert torch.equal(getattr(guided, name), getattr(guided_off, name)), name


@torch.no_grad()
def test_timesteps_per_frame_per_token_and_per_sample_agree(reference_model, reference_inputs):
    per_frame = reference_model(**reference_inputs, run_depth=False)
    video, video_t = reference_inputs["video"], reference_inputs["video_t"]
    tokens_per_frame = video.shape[3] * (video.shape[4] // 2) * (video.shape[5] // 2)
    per_token = reference_model(
        **{**reference_inputs, "video_t": video_t.repeat_interleave(tokens_per_frame, dim=1)},
        run_depth=False,
    )
    assert torch.equal(per_frame.video, per_token.video)

    uniform = {
        **reference_inputs,
        "video_t": torch.full((2,), 500.0),
        "actions_t": torch.full((2,), 500.0),
    }
    expanded = {
        **reference_inputs,
        "video_t": torch.full((2, video.shape[2]), 500.0),
        "actions_t": torch.full(reference_inputs["actions"].shape[:2], 500.0),
    }
    a, b = reference_model(**uniform, run_depth=False), reference_model(**expanded, run_depth=False)
    assert torch.equal(a.video, b.video) and torch.equal(a.actions, b.actions)


@torch.no_grad()
def test_short_text_is_zero_padded_to_text_len(reference_model, reference_inputs):
    context = reference_inputs["context"].clone()
    context[:, 5:] = 0
    padded = reference_model(**{**reference_inputs, "context": context}, run_depth=False)
    short = reference_model(**{**reference_inputs, "context": context[:, :5]}, run_depth=False)
    torch.testing.assert_close(short.video, padded.video, atol=1e-6, rtol=0)


def test_bad_call_shapes_are_refused(reference_model, reference_inputs):
    with pytest.raises(ValueError, match="context"):
        reference_model(**reference_inputs, guidance=2.0)  # needs 2B context rows
    with pytest.raises(ValueError, match="actions_t"):
        reference_model(**{**reference_inputs, "actions_t": torch.zeros(2, 3)})
    with pytest.raises(ValueError, match="text_len"):
        reference_model(**{**reference_inputs, "context": torch.zeros(2, 9, 32)})
    with pytest.raises(ValueError, match="multiples of the patch size"):
        reference_model(**{**reference_inputs, "video": torch.zeros(2, 8, 3, 2, 5, 6)})


@torch.no_grad()
def test_model_without_depth_branch_runs_and_has_no_depth_parameters():
    from xwam_model import XWAMConfig

    model = XWAMTransformer(XWAMConfig.preset("tiny", num_depth_layers=0)).eval()
    assert not any(
        name.startswith(("extra_blocks", "extra_heads")) for name, _ in model.named_parameters()
    )
    output = model(
        video=torch.randn(1, 8, 2, 2, 4, 4),
        video_t=torch.tensor([[0.0, 500.0]]),
        context=torch.randn(1, 8, 32),
        actions=torch.randn(1, 8, 7),
        actions_t=torch.full((1, 8), 500.0),
        proprio=torch.randn(1, 2, 8),
        proprio_t=torch.tensor([[0.0, 500.0]]),
    )
    assert output.depth is None
    assert output.video.shape == (1, 8, 2, 2, 4, 4)
    assert output.actions.shape == (1, 8, 7) and output.proprio.shape == (1, 2, 8)


@torch.no_grad()
def test_bfloat16_weights_run_under_autocast_close_to_float32(
    fixtures_dir, reference_inputs, forward_io
):
    from xwam_model import XWAMConfig, load_xwam_checkpoint

    config = XWAMConfig.preset("tiny")
    model = load_xwam_checkpoint(
        fixtures_dir / "tiny_weights.safetensors", config, dtype=torch.bfloat16
    )
    output = model(**reference_inputs)
    assert output.video.dtype == torch.float32
    # bfloat16 keeps ~3 significant digits; the outputs are of order 1.
    torch.testing.assert_close(output.video, forward_io["output.video"], atol=0.05, rtol=0)
    torch.testing.assert_close(output.depth, forward_io["output.depth"], atol=0.05, rtol=0)
    torch.testing.assert_close(output.actions, forward_io["output.actions"], atol=0.02, rtol=0)


@torch.no_grad()
def test_meta_build_materialised_with_random_init_runs(reference_inputs):
    from xwam_model import XWAMConfig
    from xwam_model.checkpoint import build_on_meta

    model = build_on_meta(XWAMConfig.preset("tiny")).to_empty(device="cpu").init_weights()
    output = model(**reference_inputs)
    for name in ("video", "actions", "proprio", "depth"):
        assert torch.isfinite(getattr(output, name)).all(), name
