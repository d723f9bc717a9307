"""`XWAMPolicy`: preparation, the chunk and the imagined future, determinism, refusals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from xwam_testing.pieces import run_pieces

from xwam_model import XWAMConfig
from xwam_model.normalization import Normalization, QuantileStats
from xwam_model.policy import (
    Observation,
    ObservationError,
    PolicyConfigError,
    PolicySettings,
    ViewCrop,
    XWAMPolicy,
    prepare_image,
)
from xwam_model.sampling.inference import denoise
from xwam_model.text import TextEncoder
from xwam_model.vae import DepthRange, WanVAE, frames_to_video, tiny_vae_config, video_to_uint8

HEIGHT, WIDTH = 64, 96  # 4x6 latents, as the reference fixture
SETTINGS = PolicySettings(
    height=HEIGHT,
    width=WIDTH,
    view_names=("left", "right"),
    video_steps=4,
    action_steps=2,
    depth_ranges=(DepthRange(0.2, 1.5), DepthRange(0.5, 3.0)),
    seed=3,
)
INSTRUCTION = "pick up the red cube"


@pytest.fixture(scope="module")
def vae() -> WanVAE:
    """A tiny Wan2.2-architecture VAE with 8 latent channels (the tiny preset's)."""
    return WanVAE.from_config(tiny_vae_config(8))


@pytest.fixture(scope="module")
def text_encoder() -> TextEncoder:
    """A tiny umT5 of the tiny preset's width and length."""
    return TextEncoder.tiny(text_dim=32, text_len=8)


@pytest.fixture(scope="module")
def normalization() -> Normalization:
    """Statistics far from [-1, 1], so a missing (de)normalisation shows."""
    rng = np.random.default_rng(0)
    return Normalization.from_data(
        rng.normal(size=(500, 7)) * 0.05 + 0.3, rng.normal(size=(500, 8)) * 2.0 - 4.0
    )


def _policy(vae, text_encoder, normalization, **changes) -> XWAMPolicy:
    settings = dataclasses.replace(SETTINGS, **changes)
    return XWAMPolicy.from_config(
        XWAMConfig.preset("tiny"),
        vae=vae,
        text_encoder=text_encoder,
        normalization=normalization,
        settings=settings,
    )


@pytest.fixture(scope="module")
def policy(vae, text_encoder, normalization) -> XWAMPolicy:
    """The tiny preset with random weights, 4 video and 2 action passes."""
    return _policy(vae, text_encoder, normalization)


def _observation(seed: int = 0, size: tuple[int, int] = (120, 160)) -> Observation:
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(2)]
    return Observation(images, rng.normal(size=8) * 2.0 - 4.0, INSTRUCTION)


def test_chunk_and_future_have_the_documented_shapes(policy):
    output = policy.act(_observation(), imagine=True)
    chunk, future = output.chunk, output.future
    # tiny: 2 actions per video frame, 3 latent frames = 1 observed + 8 future video frames.
    assert chunk.actions.shape == (16, 7) and chunk.actions.dtype == np.float64
    assert chunk.proprio.shape == (8, 8)
    assert np.isfinite(chunk.actions).all() and chunk.latency_s > 0
    assert future.view_names == ("left", "right")
    assert future.rgb.shape == (2, 8, HEIGHT, WIDTH, 3) and future.rgb.dtype == np.uint8
    assert future.depth.shape == (2, 8, HEIGHT, WIDTH) and future.depth.dtype == np.float32
    # Each view's depth lies in its own metric range.
    assert future.depth[0].min() >= 0.2 and future.depth[0].max() <= 1.5
    assert future.depth[1].min() >= 0.5 and future.depth[1].max() <= 3.0
    assert future.elapsed_s >= chunk.latency_s


@torch.no_grad()
def test_chunk_is_the_sampler_run_on_the_prepared_observation(policy, vae, text_encoder):
    # Images already at the model size: preparation is then only the [-1, 1] scaling.
    observation = _observation(1, size=(HEIGHT, WIDTH))
    chunk = policy.act(observation, seed=11).chunk

    model = policy.model
    generator = torch.Generator().manual_seed(11)
    first_frame = vae.encode_video(frames_to_video(np.stack(observation.images)))
    proprio = torch.as_tensor(policy.normalization.proprio.normalize(observation.proprio))
    expected = denoise(
        model,
        cond_latents=first_frame,
        cond_proprio=proprio.float().view(1, 1, 8),
        context=text_encoder.encode([INSTRUCTION]),
        noise_video=torch.randn(1, 8, 3, 2, 4, 6, generator=generator),
        noise_actions=torch.randn(1, 16, 7, generator=generator),
        noise_proprio=torch.randn(1, 9, 8, generator=generator),
        video_steps=4,
        action_steps=2,
        run_depth=False,
        stop_after_actions=True,
    )
    np.testing.assert_allclose(chunk.normalized_actions, expected.actions[0].numpy(), atol=1e-6)
    stats = policy.normalization.action
    np.testing.assert_allclose(chunk.actions, stats.denormalize(expected.actions[0].double()))
    assert (chunk.actions >= stats.q01 - 1e-9).all() and (chunk.actions <= stats.q99 + 1e-9).all()


def test_early_chunk_equals_the_chunk_of_a_full_run_and_depth_is_switchable(policy):
    observation = _observation(2)
    run = policy.begin(observation, seed=5)
    chunk = run.decode_actions()
    with_depth = run.imagine(run_depth=True)
    again = policy.act(observation, seed=5, imagine=True, run_depth=False)
    np.testing.assert_array_equal(chunk.actions, again.chunk.actions)
    assert again.future.depth is None and with_depth.depth is not None
    # The depth branch never feeds the video: the imagined RGB is the same either way.
    np.testing.assert_array_equal(with_depth.rgb, again.future.rgb)


def test_imagination_can_be_cancelled(policy):
    run = policy.begin(_observation(), seed=0)
    run.decode_actions()
    assert run.imagine(should_stop=lambda: True) is None


def test_imagination_in_pieces_interleaves_with_other_runs(policy):
    """The pieces (each remaining pass, then the VAE decode of the RGB and of the depth,
    latent frame by latent frame), with another run's decode between every two, give the
    future an uninterrupted run gives, which a model node relies on to defer an
    imagination."""
    observation = _observation(2)
    run = policy.begin(observation, seed=5)
    run.decode_actions()

    def another_decode(n: int) -> None:
        policy.begin(_observation(n), seed=n).decode_actions()

    pieces, future = run_pieces(run.imagine_steps(run_depth=True), another_decode)
    passes = SETTINGS.video_steps - SETTINGS.action_steps
    decoded = SETTINGS.latent_frames * policy.vae.pieces_per_latent_frame
    assert pieces == ["pass"] * passes + ["rgb"] * decoded + ["depth"] * decoded

    whole = policy.begin(observation, seed=5)
    whole.decode_actions()
    latents = whole.sampler.imagine(run_depth=True)
    rgb = video_to_uint8(policy.vae.decode_video(latents.video))[0, 1:].swapaxes(0, 1)
    depth = policy.vae.decode_depth(latents.depth, list(SETTINGS.depth_ranges))[0, 1:]
    np.testing.assert_array_equal(future.rgb, rgb)
    np.testing.assert_allclose(future.depth, depth.transpose(0, 1).numpy(), rtol=0, atol=1e-6)


def test_an_imagination_vae_in_bfloat16_decodes_only_the_imagined_future(
    policy, vae, text_encoder, normalization
):
    half = XWAMPolicy(
        policy.model,
        vae,
        text_encoder,
        normalization,
        policy.settings,
        imagination_vae=vae.in_dtype(torch.bfloat16),
    )
    observation = _observation(3)
    full = policy.act(observation, imagine=True, seed=7)
    halved = half.act(observation, imagine=True, seed=7)
    # The observation is encoded by the float32 VAE either way: the same chunk.
    np.testing.assert_array_equal(halved.chunk.actions, full.chunk.actions)
    rgb = np.abs(halved.future.rgb.astype(int) - full.future.rgb.astype(int))
    assert rgb.max() > 0  # the future was decoded by the bfloat16 copy...
    assert rgb.mean() < 1.0 and rgb.max() <= 8  # ...to within a few 8-bit levels
    np.testing.assert_allclose(halved.future.depth, full.future.depth, rtol=0.02)
    with pytest.raises(PolicyConfigError, match="imagination_vae: expected the policy's VAE"):
        XWAMPolicy(
            policy.model,
            vae,
            text_encoder,
            normalization,
            imagination_vae=WanVAE.from_config({**tiny_vae_config(8), "base_dim": 8}),
        )


def test_an_imagination_stopped_between_pieces_runs_no_more_of_them(policy):
    run = policy.begin(_observation(), seed=0)
    run.decode_actions()
    asked = []

    def stop_at_the_first_decode() -> bool:
        asked.append(run.sampler.passes)
        return len(asked) > SETTINGS.video_steps - SETTINGS.action_steps

    assert run.imagine(should_stop=stop_at_the_first_decode) is None
    assert run.sampler.finished  # every pass ran; the VAE decode was where it stopped


def test_deterministic_for_a_seed(vae, text_encoder, normalization):
    first = _policy(vae, text_encoder, normalization)
    second = _policy(vae, text_encoder, normalization)
    observation = _observation()
    sequence = [first.act(observation).chunk.actions for _ in range(2)]
    np.testing.assert_array_equal(sequence[0], second.act(observation).chunk.actions)
    np.testing.assert_array_equal(sequence[1], second.act(observation).chunk.actions)
    assert not np.array_equal(sequence[0], sequence[1])  # the generator moves on
    first.reset()
    np.testing.assert_array_equal(sequence[0], first.act(observation).chunk.actions)
    seeded = first.act(observation, seed=42).chunk.actions
    np.testing.assert_array_equal(seeded, second.act(observation, seed=42).chunk.actions)


def test_guidance_runs_the_doubled_batch_and_changes_the_chunk(vae, text_encoder, normalization):
    plain = _policy(vae, text_encoder, normalization)
    guided = _policy(vae, text_encoder, normalization, guidance=3.0)
    observation = _observation()
    a = plain.act(observation, seed=1).chunk.normalized_actions
    b = guided.act(observation, seed=1).chunk.normalized_actions
    assert np.abs(a - b).max() > 1e-3


def test_views_by_name_in_any_order_equal_views_in_order(policy):
    observation = _observation()
    by_name = dataclasses.replace(
        observation, images={"right": observation.images[1], "left": observation.images[0]}
    )
    np.testing.assert_array_equal(
        policy.act(observation, seed=0).chunk.actions, policy.act(by_name, seed=0).chunk.actions
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"images": [np.zeros((8, 8, 3), np.uint8)]}, r"expected 2 views \(left, right\), got 1"),
        (
            {"images": {"left": np.zeros((8, 8, 3), np.uint8)}},
            r"expected views \['left', 'right'\]",
        ),
        ({"images": [np.zeros((8, 8, 3), np.float32)] * 2}, r"images\[left\]: expected uint8"),
        (
            {"images": [np.zeros((8, 8), np.uint8)] * 2},
            r"expected uint8 RGB \[H, W, 3\], got shape",
        ),
        ({"proprio": np.zeros(7)}, r"proprio: expected 8 values, got shape \[7\]"),
        ({"proprio": [0, 1, 2, float("nan"), 4, 5, 6, 7]}, r"NaN/Inf at \[3\]"),
        ({"instruction": None}, "instruction: expected a string"),
    ],
)
def test_bad_observations_are_refused_with_what_was_expected(policy, change, message):
    with pytest.raises(ObservationError, match=message):
        policy.begin(dataclasses.replace(_observation(), **change))


def test_view_crop_and_its_intrinsics_follow_the_pixels():
    # A ramp image: red = column, green = row, so each output pixel tells where it came from.
    rows, cols = np.mgrid[0:120, 0:160]
    image = np.stack([cols, rows, np.zeros_like(rows)], axis=-1).astype(np.uint8)
    crop = ViewCrop.centred(120, 160, HEIGHT, WIDTH)
    assert (crop.crop_height, crop.crop_width) == (107, 160) and crop.top == 6
    prepared = (prepare_image(image, crop, torch.device("cpu")).numpy() + 1.0) * 127.5
    source_k = np.array([[100.0, 0, 80], [0, 100.0, 60], [0, 0, 1]])
    model_k = crop.intrinsics(source_k)
    for point in ([0.05, -0.02, 1.0], [-0.1, 0.08, 0.9], [0.2, 0.1, 1.3]):
        u, v, w = source_k @ np.array(point)
        u_model, v_model, w_model = model_k @ np.array(point)
        column, row = round(u_model / w_model), round(v_model / w_model)
        assert abs(prepared[0, row, column] - u / w) < 1.5  # red channel = source column
        assert abs(prepared[1, row, column] - v / w) < 1.5  # green channel = source row


def test_save_and_load_reproduce_the_policy(policy, vae, text_encoder, tmp_path):
    policy.save_pretrained(tmp_path)
    loaded = XWAMPolicy.from_pretrained(tmp_path, vae=vae, text_encoder=text_encoder)
    assert loaded.settings == policy.settings
    observation = _observation()
    np.testing.assert_array_equal(
        loaded.act(observation, seed=2).chunk.actions, policy.act(observation, seed=2).chunk.actions
    )
    (tmp_path / "normalization.json").unlink()
    with pytest.raises(PolicyConfigError, match="no normalization.json"):
        XWAMPolicy.from_pretrained(tmp_path, vae=vae, text_encoder=text_encoder)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        ({"view_names": ("a", "b", "c")}, r"view_names: expected 2 names"),
        ({"height": 48}, "height, width: expected multiples of 32 and 32"),
        (
            {"depth_ranges": (DepthRange(0, 1),) * 3},
            r"depth_ranges: expected 0 \(8-bit depth video\), 1 or 2",
        ),
        ({"action_steps": 5}, "action_steps: expected at most video_steps"),
        ({"guidance": -1.0}, "guidance: expected a finite number >= 0"),
        ({"max_action_prefix": 16}, "max_action_prefix: expected fewer than the chunk's 16"),
        ({"max_action_prefix": -1}, "max_action_prefix"),
    ],
)
def test_settings_that_do_not_fit_are_refused(vae, text_encoder, normalization, build, message):
    with pytest.raises(PolicyConfigError, match=message):
        _policy(vae, text_encoder, normalization, **build)


def test_parts_that_do_not_fit_are_refused(vae, text_encoder):
    config = XWAMConfig.preset("tiny")
    with pytest.raises(PolicyConfigError, match="VAE: 48 latent channels, the model expects 8"):
        XWAMPolicy.from_config(
            config, vae=WanVAE.from_config(tiny_vae_config(48)), text_encoder=text_encoder
        )
    with pytest.raises(PolicyConfigError, match="text encoder: width 16"):
        XWAMPolicy.from_config(config, vae=vae, text_encoder=TextEncoder.tiny(text_dim=16))
    wrong = Normalization(QuantileStats.identity(6), QuantileStats.identity(8))
    with pytest.raises(PolicyConfigError, match="the model expects 7 and 8"):
        XWAMPolicy.from_config(config, vae=vae, text_encoder=text_encoder, normalization=wrong)


def test_an_action_prefix_fixes_the_first_actions_of_the_chunk(vae, text_encoder, normalization):
    policy = _policy(vae, text_encoder, normalization, max_action_prefix=4)
    observation = _observation()
    plain = policy.begin(observation, seed=1).decode_actions()
    inside = np.random.default_rng(2).uniform(-0.9, 0.9, (3, 7))  # no clipping
    prefix = normalization.action.denormalize(inside)
    continued = policy.begin(observation, seed=1, action_prefix=prefix).decode_actions()
    # Normalised, kept clean through the passes, de-normalised: the same values come back.
    np.testing.assert_allclose(continued.actions[:3], prefix, atol=1e-5)
    assert np.abs(continued.actions[3:] - plain.actions[3:]).max() > 1e-4
    empty = policy.begin(observation, seed=1, action_prefix=np.zeros((0, 7))).decode_actions()
    np.testing.assert_array_equal(empty.actions, plain.actions)
    with pytest.raises(ObservationError, match="trained with at most 4"):
        policy.begin(observation, action_prefix=plain.actions[:5])
    with pytest.raises(ObservationError, match=r"action_prefix: expected \[d, 7\]"):
        policy.begin(observation, action_prefix=plain.actions[:2, :6])
    with pytest.raises(ObservationError, match="action_prefix: expected finite"):
        policy.begin(observation, action_prefix=np.full((2, 7), np.nan))
    # A checkpoint not trained for it takes none.
    untrained = _policy(vae, text_encoder, normalization)
    with pytest.raises(ObservationError, match="trained with at most 0"):
        untrained.begin(observation, action_prefix=plain.actions[:1])
