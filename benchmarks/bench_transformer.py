"""Forward latency and peak memory of `XWAMTransformer` presets.

    python benchmarks/bench_transformer.py                     # tiny, small (+ paper on CUDA)
    python benchmarks/bench_transformer.py --presets tiny small --device cpu

CPU: float32, random weights; peak memory is the growth of the process's peak resident set
(`ru_maxrss`) while the preset is built and run, each preset in a fresh process so one does
not hide another. CUDA: bfloat16 weights and autocast; the paper preset is built on the meta
device and materialised on the GPU with random values; peak memory is
`torch.cuda.max_memory_allocated` of the forward pass alone (weights excluded).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xwam_model import XWAMConfig, XWAMTransformer  # noqa: E402


@dataclass(frozen=True)
class Workload:
    """Input sizes of one forward pass (batch 1)."""

    views: int
    latent_frames: int
    latent_height: int
    latent_width: int
    actions: int
    proprio: int

    def describe(self) -> str:
        return (
            f"{self.views} views x {self.latent_frames} latent frames x "
            f"{self.latent_height}x{self.latent_width} latents, {self.actions} actions, "
            f"{self.proprio} proprio"
        )


WORKLOADS = {
    "tiny": Workload(2, 3, 4, 6, 4, 3),  # the reference fixture's sizes
    "small": Workload(3, 3, 8, 8, 32, 9),  # 3 cameras at 128x128, 9 frames, 32 actions
    "paper": Workload(3, 3, 16, 20, 32, 9),  # 3 cameras at 256x320, 9 frames, 32 actions
}
MODES = {  # name: (run_depth, guidance)
    "depth on": (True, 0.0),
    "depth off": (False, 0.0),
    "cfg 3, depth off": (False, 3.0),
}


def build_model(preset: str, device: torch.device) -> XWAMTransformer:
    """Random weights: float32 on the CPU; bfloat16, built via the meta device, on CUDA."""
    config = XWAMConfig.preset(preset)
    if device.type == "cpu":
        torch.manual_seed(0)
        return XWAMTransformer(config).eval()
    with torch.device("meta"):
        model = XWAMTransformer(config).to(torch.bfloat16)
    return model.to_empty(device=device).init_weights().eval()


def make_inputs(config: XWAMConfig, work: Workload, device: torch.device, guided: bool) -> dict:
    """Random latents, actions and proprio; frame 0 and proprio step 0 clean as in sampling."""
    generator = torch.Generator(device="cpu").manual_seed(0)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator).to(device)

    video_t = torch.full((1, work.latent_frames), 700.0, device=device)
    video_t[:, 0] = 0.0
    proprio_t = torch.full((1, work.proprio), 700.0, device=device)
    proprio_t[:, 0] = 0.0
    shape = (work.latent_frames, work.views, work.latent_height, work.latent_width)
    return dict(
        video=randn(1, config.in_channels, *shape),
        video_t=video_t,
        context=randn(2 if guided else 1, config.text_len, config.text_dim),
        actions=randn(1, work.actions, config.action_dim),
        actions_t=torch.full((1, work.actions), 700.0, device=device),
        proprio=randn(1, work.proprio, config.proprio_dim),
        proprio_t=proprio_t,
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def bench_preset(preset: str, device_name: str, repeats: int, warmup: int) -> list[dict]:
    """Every mode of one preset; one row each."""
    device = torch.device(device_name)
    rss_before = _peak_rss_mib()
    started = time.perf_counter()
    model = build_model(preset, device)
    print(f"[{preset}] built in {time.perf_counter() - started:.1f} s", flush=True)
    parameters = sum(p.numel() for p in model.parameters())
    work = WORKLOADS[preset]
    rows = []
    for mode, (run_depth, guidance) in MODES.items():
        inputs = make_inputs(model.config, work, device, guided=guidance > 0)
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        times = []
        with torch.inference_mode():
            for index in range(warmup + repeats):
                _sync(device)
                start = time.perf_counter()
                model(**inputs, run_depth=run_depth, guidance=guidance)
                _sync(device)
                if index >= warmup:
                    times.append(time.perf_counter() - start)
        if device.type == "cuda":
            peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
            memory = f"{peak:.0f} MiB forward"
        else:
            memory = f"{_peak_rss_mib() - rss_before:.0f} MiB RSS"
        median = statistics.median(times)
        print(f"[{preset}] {mode}: {1000 * median:.1f} ms (median of {repeats})", flush=True)
        rows.append(
            dict(
                preset=preset,
                mode=mode,
                parameters=parameters,
                tokens=_tokens(work),
                median_ms=1000 * median,
                min_ms=1000 * min(times),
                memory=memory,
            )
        )
    return rows


def _tokens(work: Workload) -> int:
    video = work.latent_frames * work.views * (work.latent_height // 2) * (work.latent_width // 2)
    return video + work.actions + work.proprio


def _in_fresh_process(preset: str, device: str, repeats: int, warmup: int) -> list[dict]:
    # A fresh process per preset, so the peak RSS of one preset is not hidden by another's.
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(bench_preset, (preset, device, repeats, warmup))


def print_table(rows: list[dict], device: str) -> None:
    """The summary table."""
    print(f"\nXWAMTransformer forward, batch 1, device {device}, threads {torch.get_num_threads()}")
    header = f"{'preset':<7}{'params':>10}{'tokens':>8}  {'mode':<18}{'median ms':>10}"
    header += f"{'min ms':>9}  {'x10 passes':>10}  memory"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['preset']:<7}{row['parameters'] / 1e6:>9.2f}M{row['tokens']:>8}  "
            f"{row['mode']:<18}{row['median_ms']:>10.1f}{row['min_ms']:>9.1f}  "
            f"{10 * row['median_ms'] / 1000:>9.2f}s  {row['memory']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cuda = torch.cuda.is_available()
    parser.add_argument(
        "--presets",
        nargs="+",
        choices=list(WORKLOADS),
        default=["tiny", "small", "paper"] if cuda else ["tiny", "small"],
    )
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument("--repeats", type=int, default=20, help="timed forward passes per mode")
    parser.add_argument("--warmup", type=int, default=3, help="untimed passes first")
    args = parser.parse_args()
    presets = args.presets
    if args.device == "cpu" and "paper" in presets:
        print("paper preset skipped: 6.7 B parameters need a GPU", flush=True)
        presets = [p for p in presets if p != "paper"]
    rows = []
    for preset in presets:
        print(f"[{preset}] {WORKLOADS[preset].describe()}", flush=True)
        if args.device == "cpu":
            rows += _in_fresh_process(preset, args.device, args.repeats, args.warmup)
        else:
            rows += bench_preset(preset, args.device, args.repeats, args.warmup)
    print_table(rows, args.device)


if __name__ == "__main__":
    main()
