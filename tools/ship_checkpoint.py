"""Put a trained run into the repository as a model: weights, VAE, statistics, curves, card.

    python tools/ship_checkpoint.py --name sim_panda_lift --run runs/train_lift \
        --vae-run runs/vae_lift --collect runs/collect_lift --dataset runs/data_lift \
        [--eval runs/eval_lift] [--baseline runs/eval_random]

Writes `config/model/<name>/` (the run's `final/` checkpoint, `vae/`, `training_curves.png`,
`CARD.md`, the evaluation's `eval.json`/`eval.png` when given) and leaves the model YAML
`config/model/<name>.yaml` (hand-written: what the model node runs) alone. Refuses a result
of 50 MB or more: the repository is no place for bigger weights.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT_BYTES = 50 * 2**20


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _log_records(run: Path) -> list[dict]:
    from xwam_model.training.curves import read_log

    return read_log(run / "train_log.jsonl")[0]


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _vae_stages(report: dict) -> list[dict]:
    """The VAE's training runs, first to last (a run fine-tuning another names it)."""
    stages = [report]
    while stages[0].get("config", {}).get("init_vae"):
        earlier = _read(Path(stages[0]["config"]["init_vae"]).parent / "vae_report.json")
        if not earlier:
            break
        stages.insert(0, earlier)
    return stages


def card(args, records, vae_report, collect, dataset, evaluation, baseline) -> str:
    """The model card: data, training, time and metrics, and how to make it again."""
    vae_stages = _vae_stages(vae_report)
    steps = [r for r in records if "loss" in r and "step" in r]
    validations = [r for r in records if "validation" in r]
    times = [r["time"] for r in records if "time" in r]
    train_s = (max(times) - min(times)) if times else None
    config = _read(args.run / "training_config.json")
    clips = dataset.get("clips", {})
    lines = [
        f"# {args.name}: X-WAM `{config.get('preset', '?')}` on the simulated Panda's Lift",
        "",
        "A CPU-sized X-WAM (same architecture as the paper's: video, proprio and action "
        "tokens in one DiT, a depth branch replicating its last blocks, ANS sampling), "
        "trained from scratch on scripted demonstrations recorded through the ROS stack. "
        "It drives the embedded simulated arm in `make demo` and `xwam eval`. It is a "
        "demonstration of the flywheel at a size a 2-core CPU trains in about two hours, not "
        "a general manipulation model: one task, one scene, the sim's cameras.",
        "",
        "## Data",
        "",
        f"- `xwam collect`: {collect.get('episodes', '?')} scripted-expert Lift episodes "
        f"(seeds {collect.get('rows', [{}])[0].get('seed', '?')}-"
        f"{collect.get('rows', [{}])[-1].get('seed', '?')}), "
        f"{collect.get('successes', '?')} successful; {collect.get('wall_time_s', '?')} s of "
        "wall time.",
        f"- `xwam dataset build --model small`: 3 views (agentview, sideview, wrist) at "
        f"128x128 with depth, 9-frame clips at 5 Hz with 32 ee_delta actions at 20 Hz; "
        f"{clips.get('train', '?')} training clips, {clips.get('val', '?')} validation clips "
        "(the last 10% of the episodes).",
        "",
        "## Training",
        "",
        f"- VAE (`xwam train-vae`): diffusers `AutoencoderKLWan`, "
        f"{vae_report.get('parameters', 0) / 1e6:.2f} M parameters (Wan2.2 layout, 48 latent "
        "channels, 4x16x16), trained on 64x64 crops of the views and depth"
        + "".join(
            f"; {stage.get('config', {}).get('steps', '?')} steps on "
            f"{stage.get('config', {}).get('frames', '?')}-frame videos in "
            f"{_fmt(stage.get('train_time_s'))} s (held-out 9-frame clips: RGB PSNR "
            f"{_fmt(stage.get('held_out', {}).get('rgb_psnr_db'))} dB, depth RMSE "
            f"{_fmt(stage.get('held_out', {}).get('depth_rmse_m'))} m)"
            for stage in vae_stages
        )
        + ".",
        f"- X-WAM (`xwam train --config config/training/{args.name}.yaml`): "
        f"{config.get('steps', '?')} steps, batch {config.get('batch_size', '?')}, AdamW lr "
        f"{config.get('lr', '?')} (cosine, warm-up {config.get('warmup_steps', '?')}), "
        f"latents cached; {_fmt(train_s / 60 if train_s else None)} min on 2 CPU cores "
        "(the training log's first to last record).",
        *(f"- {note}" for note in args.note),
    ]
    if steps:
        lines.append(
            f"- Loss {steps[0]['loss']:.3f} (step {steps[0]['step']}) -> {steps[-1]['loss']:.3f} "
            f"(step {steps[-1]['step']}); parts at the end: "
            + ", ".join(
                f"{k} {steps[-1][k]:.3f}"
                for k in ("video", "action", "proprio", "depth")
                if k in steps[-1]
            )
            + "."
        )
    if validations:
        last = validations[-1]
        lines.append(
            f"- Validation at step {last['step']} ({last.get('split', 'val')} clips): "
            + ", ".join(f"{k} {_fmt(v)}" for k, v in last["validation"].items())
            + " (the policy's own sampling: 4 action passes, 8 video passes)."
        )
    lines += ["", "Curves: `training_curves.png`.", ""]
    if evaluation:
        summary, protocol = evaluation["summary"], evaluation["protocol"]
        lines += [
            "## Closed-loop evaluation (`xwam eval`)",
            "",
            f"Seeds {protocol['seeds'][0]}-{protocol['seeds'][1]} (held out), at most "
            f"{protocol['max_chunks']} chunks per episode, the full ROS graph (sim, model "
            "node, executor) on simulated time, 2 CPU cores.",
            "",
            "| | this checkpoint | random weights (`small`) |",
            "|---|---|---|",
        ]
        other = baseline.get("summary", {}) if baseline else {}
        for key, label in (
            ("success_rate", "success rate"),
            ("episodes", "episodes"),
            ("chunks_per_episode_mean", "chunks per episode"),
            ("decode_latency_ms_p50", "decode latency p50 (ms)"),
            ("decode_latency_ms_p95", "decode latency p95 (ms)"),
            ("rgb_psnr_db", "imagined RGB PSNR (dB)"),
            ("rgb_ssim", "imagined RGB SSIM"),
            ("depth_abs_rel", "imagined depth AbsRel"),
            ("depth_rmse_m", "imagined depth RMSE (m)"),
            ("chamfer_m", "Chamfer, imagined vs rendered cloud (m)"),
        ):
            lines.append(f"| {label} | {_fmt(summary.get(key))} | {_fmt(other.get(key))} |")
        lines += ["", "Details: `eval.json`, `eval.png`.", ""]
    lines += [
        "## Make it again",
        "",
        "```",
        "xwam collect --episodes 120 --seed 0 --output runs/collect_lift",
        "xwam dataset build runs/collect_lift/bags -o runs/data_lift --model small",
        "xwam train-vae --dataset runs/data_lift --output runs/vae_lift --steps 2000 --frames 5",
        "xwam train-vae --dataset runs/data_lift --output runs/vae_lift9 --frames 9 \\",
        "    --init-vae runs/vae_lift/vae --steps 1000 --lr 0.0003",
        f"xwam train --config config/training/{args.name}.yaml",
        f"xwam eval --model {args.name} --episodes 20 --output runs/eval_lift",
        "```",
        "",
        "The text encoder is the tiny random one seeded by `weights_seed` (one instruction: "
        "'lift the red cube'); it is rebuilt, not stored.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--run", type=Path, required=True, help="xwam train's run folder")
    parser.add_argument("--vae-run", type=Path, required=True, help="xwam train-vae's folder")
    parser.add_argument("--collect", type=Path, required=True, help="xwam collect's folder")
    parser.add_argument("--dataset", type=Path, required=True, help="the dataset folder")
    parser.add_argument("--eval", type=Path, help="xwam eval's folder for this checkpoint")
    parser.add_argument("--baseline", type=Path, help="xwam eval's folder for the baseline")
    parser.add_argument(
        "--note", action="append", default=[], help="a line added to the card's Training list"
    )
    args = parser.parse_args(argv)
    from xwam_model.training.curves import write_training_curves

    target = ROOT / "config" / "model" / args.name
    final = args.run / "final"
    if not (final / "model.safetensors").is_file():
        print(f"{final}: no model.safetensors; has the run finished?", file=sys.stderr)
        return 2
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(final, target)
    shutil.copytree(args.vae_run / "vae", target / "vae")
    shutil.copy(args.vae_run / "vae_report.json", target / "vae_report.json")
    write_training_curves(args.run / "train_log.jsonl", target / "training_curves.png")
    evaluation = _read(args.eval / "eval.json") if args.eval else {}
    baseline = _read(args.baseline / "eval.json") if args.baseline else {}
    if args.eval:
        shutil.copy(args.eval / "eval.json", target / "eval.json")
        shutil.copy(args.eval / "eval.png", target / "eval.png")
    text = card(
        args,
        _log_records(args.run),
        _read(args.vae_run / "vae_report.json"),
        _read(args.collect / "collect.json"),
        _read(args.dataset / "dataset.json"),
        evaluation,
        baseline,
    )
    (target / "CARD.md").write_text(text)
    total = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    if total >= LIMIT_BYTES:
        print(f"{target}: {total / 2**20:.1f} MB, over the 50 MB limit", file=sys.stderr)
        return 1
    print(f"{target}: {total / 2**20:.1f} MB ({len(list(target.rglob('*')))} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
