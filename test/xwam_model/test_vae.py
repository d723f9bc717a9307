"""The Wan2.2 VAE adapter: layout, latent normalisation, depth mapping and a real round trip.

What is asserted, and why (a tiny random VAE reconstructs nothing, so "decode(encode(x)) is
close to x" cannot be asserted on it directly):

- Normalisation is bit-identical to diffusers' Wan pipelines (their formulas, re-typed here),
  with latent statistics that are not 0/1 so a skipped or inverted step shows.
- The multi-view layout `[B, C, T, V, H, W]` gives exactly what encoding each view on its own
  gives (views with different content, so a swapped or mixed axis shows).
- Frame and size arithmetic: T = 1 and T = 9 frames -> 1 and 3 latent frames, 16x spatially.
- Depth: metres -> [-1, 1] -> three channels -> mean -> metres is exact without the VAE, per
  view, with clipping; through the VAE the result stays inside each view's range.
- A round trip that means something: the tiny VAE is trained for 40 steps (about 2 s) to
  reconstruct two smooth images, with diffusers' own encode/decode and no normalisation;
  then the adapter's full path (uint8 frames -> [-1, 1] -> views folded -> encoded ->
  normalised -> denormalised -> decoded -> uint8) must give those images back, each in its
  own view. A view or colour-channel mix-up or a wrong uint8 scale breaks it, and the
  untrained VAE fails the same threshold by far. (It does not pin the normalisation: the
  decoder's RMS norms make it nearly blind to a per-channel rescaling of the latents; the
  bit-exact comparison with diffusers' formulas above does.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from xwam_testing.pieces import run_pieces

from xwam_model.vae import (
    DepthRange,
    WanVAE,
    depth_to_video,
    frames_to_video,
    tiny_vae_config,
    video_to_depth,
    video_to_uint8,
    wan22_vae_architecture,
)

RANGES = [DepthRange(0.2, 2.5), DepthRange(0.1, 4.0)]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """One thread (see conftest): two made the training loop below ten times slower here."""


@pytest.fixture(scope="module")
def vae() -> WanVAE:
    return WanVAE.from_config(tiny_vae_config(), seed=0)


def _random_video(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ------------------------------------------------------------------------------ configs


def test_tiny_config_has_the_wan22_strides_and_pairs_with_the_tiny_transformer(vae):
    assert vae.latent_channels == 8  # the transformer's `tiny` preset: in_channels 8
    assert (vae.temporal_compression, vae.spatial_compression) == (4, 16)
    assert vae.latent_shape(9, 256, 320) == (3, 16, 20)  # the paper's clip size
    with torch.device("meta"):  # the paper VAE's shapes, no memory
        paper = _paper_vae_without_weights()
    assert (paper.latent_channels, paper.temporal_compression, paper.spatial_compression) == (
        48,
        4,
        16,
    )
    assert 6.5e8 < sum(p.numel() for p in paper.model.parameters()) < 7.5e8


def _paper_vae_without_weights() -> WanVAE:
    """The paper VAE's architecture with placeholder statistics (weights not needed)."""
    from diffusers import AutoencoderKLWan

    config = wan22_vae_architecture() | dict(latents_mean=[0.0] * 48, latents_std=[1.0] * 48)
    return WanVAE(AutoencoderKLWan(**config))


def test_config_statistics_are_checked():
    config = tiny_vae_config() | dict(latents_std=[1.0] * 7)
    with pytest.raises(ValueError, match="latents_std"):
        WanVAE.from_config(config)
    with pytest.raises(ValueError, match="missing"):
        WanVAE.from_config({k: v for k, v in tiny_vae_config().items() if k != "latents_mean"})


# ------------------------------------------------------------------------------ normalisation


def test_normalisation_is_diffusers_wan_pipeline_convention(vae):
    video = _random_video(2, 3, 5, 32, 48)
    model, config = vae.model, vae.model.config
    with torch.no_grad():
        raw = model.encode(video).latent_dist.mode()  # the pipelines' sample_mode="argmax"
    # pipeline_wan_i2v.prepare_latents (encode) and pipeline_wan.__call__ (decode):
    latents_mean = torch.tensor(config.latents_mean).view(1, config.z_dim, 1, 1, 1)
    latents_std = 1.0 / torch.tensor(config.latents_std).view(1, config.z_dim, 1, 1, 1)
    expected = (raw - latents_mean) * latents_std
    assert not torch.allclose(expected, raw, atol=0.1)  # the statistics do something
    assert torch.equal(vae.encode_video(video), expected)

    with torch.no_grad():
        expected_video = model.decode(expected / latents_std + latents_mean).sample
    assert torch.equal(vae.decode_video(expected), expected_video)
    assert torch.equal(vae.denormalize(vae.normalize(raw)), expected / latents_std + latents_mean)


# ------------------------------------------------------------------------------ layout


@pytest.mark.parametrize(("frames", "latent_frames"), [(1, 1), (9, 3)])
def test_views_fold_like_separate_videos(vae, frames, latent_frames):
    # Two samples of two views, all different: a batch/view ordering mix-up shows.
    video = _random_video(2, 3, frames, 2, 32, 32, seed=frames)
    latents = vae.encode_video(video)
    assert latents.shape == (2, 8, latent_frames, 2, 2, 2)
    assert latents.dtype == torch.float32
    decoded = vae.decode_video(latents)
    assert decoded.shape == video.shape
    assert decoded.abs().max() <= 1.0
    for sample in range(2):
        for view in range(2):
            alone = vae.encode_video(video[sample : sample + 1, :, :, view])
            torch.testing.assert_close(
                latents[sample : sample + 1, :, :, view], alone, atol=1e-5, rtol=1e-5
            )
            alone = vae.decode_video(latents[sample : sample + 1, :, :, view])
            torch.testing.assert_close(
                decoded[sample : sample + 1, :, :, view], alone, atol=1e-5, rtol=1e-5
            )


def test_observed_frames_give_one_latent_frame_per_view(vae):
    frames = np.zeros((3, 32, 64, 3), dtype=np.uint8)
    assert vae.encode_frames(frames).shape == (1, 8, 1, 3, 2, 4)


def test_uint8_frames_map_to_unit_range_and_back_exactly():
    values = np.arange(256, dtype=np.uint8)
    frames = np.stack([values.reshape(16, 16)] * 3, axis=-1)[None].repeat(2, axis=0)
    frames[1] = 255 - frames[1]
    video = frames_to_video(frames)
    assert video.shape == (1, 3, 1, 2, 16, 16)
    assert video.min() == -1.0 and video.max() == 1.0
    assert video[0, 1, 0, 1, 3, 5] == float(frames[1, 3, 5, 1]) / 127.5 - 1.0
    np.testing.assert_array_equal(video_to_uint8(video)[0, 0], frames)
    bgr_view = frames[..., ::-1]  # negative strides are accepted
    np.testing.assert_array_equal(video_to_uint8(frames_to_video(bgr_view))[0, 0], bgr_view)


def test_bad_video_input_is_named(vae):
    with pytest.raises(ValueError, match="1 \\+ 4k frames"):
        vae.encode_video(_random_video(1, 3, 4, 32, 32))
    with pytest.raises(ValueError, match="multiples of 16"):
        vae.encode_video(_random_video(1, 3, 1, 40, 32))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        vae.encode_video(_random_video(1, 3, 1, 32, 32) * 3)
    nan_video = _random_video(1, 3, 1, 32, 32)
    nan_video[0, 0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        vae.encode_video(nan_video)
    with pytest.raises(TypeError, match="floating-point"):
        vae.encode_video(torch.zeros(1, 3, 1, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="3 channels"):
        vae.encode_video(_random_video(1, 4, 1, 32, 32))
    with pytest.raises(ValueError, match="8 channels"):
        vae.decode_video(torch.zeros(1, 4, 1, 2, 2))
    with pytest.raises(TypeError, match="uint8"):
        vae.encode_frames(np.zeros((2, 32, 32, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\[V, H, W, 3\]"):
        vae.encode_frames(np.zeros((32, 32, 3), dtype=np.uint8))


# ------------------------------------------------------------------------------ depth


def test_depth_mapping_is_exact_per_view_without_the_vae():
    depth = torch.empty(1, 2, 2, 4, 4)
    depth[:, :, 0] = torch.linspace(0.2, 2.5, 16).view(4, 4)
    depth[:, :, 1] = torch.linspace(0.1, 4.0, 16).view(4, 4)
    video = depth_to_video(depth, RANGES)
    assert video.shape == (1, 3, 2, 2, 4, 4)
    assert torch.equal(video[:, 0], video[:, 1]) and torch.equal(video[:, 0], video[:, 2])
    for view in range(2):  # near -> -1, far -> +1, each over its own range
        assert video[0, 0, 0, view, 0, 0] == -1.0 and video[0, 0, 0, view, -1, -1] == 1.0
    mid = depth_to_video(torch.full((1, 1, 2, 1, 1), 1.35), DepthRange(0.2, 2.5))
    assert mid[0, 0, 0, 0, 0, 0].item() == pytest.approx(0.0, abs=1e-7)
    torch.testing.assert_close(video_to_depth(video, RANGES), depth, atol=1e-6, rtol=0)


def test_depth_outside_the_range_is_clipped_and_nan_needs_a_fill():
    depth = torch.tensor([0.0, 0.05, 9.0, float("inf"), -float("inf")]).view(1, 1, 1, 1, 5)
    unit = depth_to_video(depth, DepthRange(0.1, 4.0))[0, 0, 0, 0, 0]
    assert unit.tolist() == [-1.0, -1.0, 1.0, 1.0, -1.0]
    metres = video_to_depth(torch.full((1, 3, 1, 1, 1, 1), 1.5), DepthRange(0.1, 4.0))
    assert metres.item() == pytest.approx(4.0)
    with_nan = torch.tensor([1.0, float("nan")]).view(1, 1, 1, 1, 2)
    with pytest.raises(ValueError, match="NaN"):
        depth_to_video(with_nan, DepthRange(0.1, 4.0))
    filled = depth_to_video(with_nan, DepthRange(0.1, 4.0), nan_fill=4.0)
    assert filled[0, 0, 0, 0, 0, 1] == 1.0


def test_depth_range_is_validated_and_serialisable():
    for near, far in [(-0.1, 1.0), (1.0, 1.0), (0.0, float("nan")), (0.0, float("inf"))]:
        with pytest.raises(ValueError, match="DepthRange"):
            DepthRange(near, far)
    with pytest.raises(TypeError, match="number"):
        DepthRange("0.1", 2.0)
    assert DepthRange.from_dict(RANGES[1].to_dict()) == RANGES[1]
    with pytest.raises(ValueError, match="near and far"):
        DepthRange.from_dict({"near": 0.1})
    with pytest.raises(ValueError, match="one per view"):
        depth_to_video(torch.ones(1, 1, 3, 2, 2), RANGES)


def test_depth_through_the_vae_keeps_shapes_and_ranges(vae):
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.3, 2.0, size=(1, 5, 2, 32, 32)).astype(np.float32)
    latents = vae.encode_depth(depth, RANGES)
    assert latents.shape == (1, 8, 2, 2, 2, 2)
    metres = vae.decode_depth(latents, RANGES)
    assert metres.shape == (1, 5, 2, 32, 32) and metres.dtype == torch.float32
    for view, depth_range in enumerate(RANGES):
        assert depth_range.near <= metres[:, :, view].min()
        assert metres[:, :, view].max() <= depth_range.far


# ------------------------------------------------------------------------------ dtype, loading


def test_bfloat16_network_returns_float32_latents():
    vae_bf16 = WanVAE.from_config(tiny_vae_config(), dtype=torch.bfloat16)
    assert vae_bf16.dtype == torch.bfloat16
    latents = vae_bf16.encode_frames(np.full((1, 32, 32, 3), 128, dtype=np.uint8))
    assert latents.dtype == torch.float32 and latents.shape == (1, 8, 1, 1, 2, 2)
    assert vae_bf16.decode_video(latents).dtype == torch.float32


def test_from_pretrained_reads_a_local_diffusers_folder(vae, tmp_path):
    vae.model.save_pretrained(tmp_path / "pipeline" / "vae")
    for directory in (tmp_path / "pipeline" / "vae", tmp_path / "pipeline"):
        loaded = WanVAE.from_pretrained(directory)
        video = _random_video(1, 3, 1, 32, 32)
        assert torch.equal(loaded.encode_video(video), vae.encode_video(video))
    with pytest.raises(FileNotFoundError, match="config.json"):
        WanVAE.from_pretrained(tmp_path)


# ------------------------------------------------------------------------------ round trip


def _smooth_views() -> np.ndarray:
    """Two different smooth colour gradients, uint8 `[2, 32, 32, 3]`."""
    y, x = np.meshgrid(np.linspace(-1, 1, 32), np.linspace(-1, 1, 32), indexing="ij")
    offset = np.array([[0.5, -0.2, 0.1], [-0.4, 0.3, 0.6]])[:, None, None]
    slope = np.array([[0.3, 0.0, -0.3], [0.0, 0.4, 0.2]])[:, None, None]
    unit = offset + slope * x[None, ..., None] + 0.3 * slope[..., ::-1] * y[None, ..., None]
    return np.round((unit + 1) * 127.5).astype(np.uint8)


def _rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def test_round_trip_of_smooth_images_after_a_short_training():
    frames = _smooth_views()
    untrained = WanVAE.from_config(tiny_vae_config(), seed=0)
    untrained_rms = _rms(
        video_to_uint8(untrained.decode_video(untrained.encode_frames(frames)))[0, 0], frames
    )

    trained = WanVAE.from_config(tiny_vae_config(), seed=0)
    model = trained.model.requires_grad_(True).train()
    images = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(127.5).sub(1).unsqueeze(2)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(40):
        reconstruction = model.decode(model.encode(images).latent_dist.mode()).sample
        loss = torch.nn.functional.mse_loss(reconstruction, images)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.requires_grad_(False).eval()

    round_trip = video_to_uint8(trained.decode_video(trained.encode_frames(frames)))[0, 0]
    assert round_trip.shape == frames.shape
    threshold = 16.0  # grey levels RMS; the trained VAE reaches ~8
    assert _rms(round_trip, frames) < threshold
    assert untrained_rms > 2 * threshold  # the check can fail
    assert _rms(round_trip, frames[::-1]) > 2 * threshold  # each view comes back in its place


def test_decoding_frame_by_frame_gives_the_same_video_with_other_uses_between(vae):
    """`decode_video_steps` (an imagination's VAE pieces) yields before each piece and
    returns `decode_video`'s video exactly, even with the VAE encoding and decoding other
    things between its frames (the next observation's decode between pieces)."""
    latents = _random_video(1, vae.latent_channels, 3, 2, 2, 2, seed=3)
    whole = vae.decode_video(latents)

    def other_uses(n: int) -> None:
        vae.encode_video(_random_video(1, 3, 5, 2, 32, 32, seed=n).clamp(-1, 1))
        vae.decode_video(_random_video(1, vae.latent_channels, 2, 1, 2, 2, seed=9))

    yielded, pieces = run_pieces(vae.decode_video_steps(latents), other_uses)
    # One piece per upsampling block of each latent frame, each named by its frame.
    assert vae.pieces_per_latent_frame == len(vae.model.decoder.up_blocks) == 4
    assert yielded == [frame for frame in range(3) for _ in range(4)]
    assert pieces.shape == whole.shape
    assert torch.equal(pieces, whole)
    with pytest.raises(ValueError, match="NaN or Inf"):
        next(vae.decode_video_steps(torch.full_like(latents, float("nan"))))


def test_a_vae_in_another_dtype_is_a_copy_that_decodes_alike(vae):
    assert vae.in_dtype(torch.float32) is vae
    half = vae.in_dtype(torch.bfloat16)
    assert half.dtype == torch.bfloat16 and vae.dtype == torch.float32  # the original kept
    latents = _random_video(1, vae.latent_channels, 2, 1, 2, 2, seed=4)
    full, halved = vae.decode_video(latents), half.decode_video(latents)
    assert halved.dtype == torch.float32 and halved.shape == full.shape
    assert not torch.equal(halved, full)  # decoded by the bfloat16 weights...
    torch.testing.assert_close(halved, full, rtol=0, atol=0.05)  # ...to within their precision
