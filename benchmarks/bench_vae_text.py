"""Latency of the VAE and text-encoder adapters, as the policy runtime uses them.

    python benchmarks/bench_vae_text.py                  # tiny VAE + tiny umT5 on this device
    python benchmarks/bench_vae_text.py --device cuda    # + the paper VAE (bf16, random weights)

Rows: encoding the observed frame of every view (each policy call), decoding an imagined clip
to RGB and to metric depth (the optional imagination phase), and embedding an instruction
(once per new instruction; cached after). Paper-size parameter counts are taken on the meta
device, so they cost no memory; timing the paper VAE needs a GPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from diffusers import AutoencoderKLWan  # noqa: E402
from transformers import UMT5Config, UMT5EncoderModel  # noqa: E402

from xwam_model.text import TextEncoder  # noqa: E402
from xwam_model.vae import (  # noqa: E402
    DepthRange,
    WanVAE,
    tiny_vae_config,
    wan22_vae_architecture,
)

# umT5-xxl, the text encoder of Wan2.2 (google/umt5-xxl's encoder).
UMT5_XXL = dict(
    vocab_size=256384,
    d_model=4096,
    d_kv=64,
    d_ff=10240,
    num_layers=24,
    num_heads=64,
    feed_forward_proj="gated-gelu",
)


def timed(run: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median seconds of `repeats` runs after one warm-up run."""
    times = []
    for index in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if index:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_vae(name: str, vae: WanVAE, views: int, height: int, width: int, repeats: int) -> None:
    """Encode the observed frames, decode a 9-frame clip to RGB and to depth."""
    device = vae.device
    frames = np.random.default_rng(0).integers(0, 256, (views, height, width, 3), dtype=np.uint8)
    _, latent_h, latent_w = vae.latent_shape(9, height, width)
    latents = torch.randn(1, vae.latent_channels, 3, views, latent_h, latent_w, device=device)
    ranges = DepthRange(0.1, 3.0)
    parameters = sum(p.numel() for p in vae.model.parameters()) / 1e6
    print(f"\nVAE {name} ({parameters:.1f} M parameters, {vae.dtype}, {device}), {views} views")
    rows = [
        (f"encode observed frames {height}x{width}", lambda: vae.encode_frames(frames)),
        ("decode 3 latent frames -> 9 RGB frames", lambda: vae.decode_video(latents)),
        ("decode 3 latent frames -> 9 depth frames", lambda: vae.decode_depth(latents, ranges)),
    ]
    for label, run in rows:
        print(f"  {label:<44}{1000 * timed(run, device, repeats):>9.1f} ms")


def bench_text(repeats: int) -> None:
    """The tiny encoder on the CPU, uncached and cached; umT5-xxl's size on meta."""
    encoder = TextEncoder.tiny(text_dim=64, text_len=32)
    prompts = iter(f"pick up cube number {i}" for i in range(10_000))
    device = torch.device("cpu")
    uncached = timed(lambda: encoder.encode([next(prompts)]), device, repeats)
    cached = timed(lambda: encoder.encode_pair("pick up the red cube"), device, repeats)
    print("\nText encoder tiny (64-d, 32 tokens, cpu)")
    print(f"  {'new instruction':<44}{1000 * uncached:>9.2f} ms")
    print(f"  {'cached instruction + empty prompt':<44}{1000 * cached:>9.3f} ms")
    with torch.device("meta"):
        xxl = UMT5EncoderModel(UMT5Config(**UMT5_XXL))
    print(f"  umT5-xxl encoder: {sum(p.numel() for p in xxl.parameters()) / 1e9:.2f} B parameters")


def paper_vae(device: torch.device) -> WanVAE:
    """The Wan2.2 VAE architecture with random bfloat16 weights (statistics 0/1)."""
    config = wan22_vae_architecture() | dict(latents_mean=[0.0] * 48, latents_std=[1.0] * 48)
    torch.manual_seed(0)
    with torch.device(device):  # built in place: no float32 copy on the CPU first
        return WanVAE(AutoencoderKLWan(**config).type(torch.bfloat16))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"threads {torch.get_num_threads()}")
    bench_vae("tiny", WanVAE.from_config(tiny_vae_config(), device=device), 3, 64, 80, args.repeats)
    if device.type == "cuda":
        bench_vae("Wan2.2 (paper)", paper_vae(device), 3, 256, 320, args.repeats)
    else:
        size = sum(p.numel() for p in paper_vae(torch.device("meta")).model.parameters())
        print(f"\nVAE Wan2.2 (paper): {size / 1e6:.0f} M parameters; timing it needs --device cuda")
    bench_text(args.repeats)


if __name__ == "__main__":
    main()
