"""Training a learned registration model: seeded, resumable, selected by validation Dice.

Losses (MONAI): ``LocalNormalizedCrossCorrelationLoss`` between the warped moving and the fixed
image, ``BendingEnergyLoss`` of the field, and with ``supervision: weak`` a soft Dice of the warped
label masks (labels are used at training time only). They are computed on the network's coarse
grid, where one step costs a fraction of a full-grid one; instance optimisation refines the fine
levels per pair.

Resuming: every ``checkpoint_every`` steps the network, Adam's state, the step and the curve go
to ``checkpoints/last.pt``. The pair each step trains on is drawn from a generator seeded by
(seed, step), so a run killed and resumed takes the same steps as one that was not, and on CPU
(same thread count) ends with the same weights.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io import write_text_atomic
from ..evaluation.metrics import dice_per_label
from . import checkpoint
from .data import Pair, one_hot, shared_labels
from .network import build_network, pooling_factor, predict

log = logging.getLogger("cohortreg")


@dataclass(frozen=True)
class TrainSettings:
    supervision: str = "unsupervised"   # or weak: + Dice of the warped labels
    steps: int = 3000
    batch_size: int = 1                 # pairs per step (gradients accumulated: grids may differ)
    lr: float = 1e-3
    lncc_weight: float = 1.0
    bending_weight: float = 0.5
    dice_weight: float = 1.0
    lncc_window: int = 5
    val_every: int = 100
    checkpoint_every: int = 100
    seed: int = 0
    channels: tuple[int, ...] = (8, 16, 16, 16)
    grid_scale: int = 2                 # the network works at 1/grid_scale of the working grid
    integration_steps: int = 7
    max_minutes: float = 0.0            # 0: no wall-time limit
    crop_margin_mm: float = 16.0        # the data is cut to the brains plus this (the learned methods' box)
    device: str = "cpu"                 # auto: cuda when available; cuda: refused without one

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "TrainSettings":
        known = {k: v for k, v in params.items() if k in cls.__dataclass_fields__}
        if "channels" in known:
            known["channels"] = tuple(known["channels"])
        return cls(**known)

    def network(self) -> dict[str, Any]:
        return {"channels": list(self.channels), "integration_steps": self.integration_steps}


@dataclass
class Losses:
    lncc: Any
    bending: Any
    warp: Any = field(default=None)


def _losses(settings: TrainSettings) -> Losses:
    from monai.losses import BendingEnergyLoss, LocalNormalizedCrossCorrelationLoss
    from monai.networks.blocks import Warp

    # rectangular kernel: the Gaussian kernel's truncation was wrong in MONAI before its 2026 fix
    return Losses(LocalNormalizedCrossCorrelationLoss(spatial_dims=3, kernel_size=settings.lncc_window,
                                                      kernel_type="rectangular"),
                  BendingEnergyLoss(), Warp(mode="bilinear", padding_mode="zeros"))


def training_device(name: str) -> torch.device:
    """cpu, cuda, or auto (cuda when available). On CUDA, TF32 matrix maths (the reduced precision that is safe
    for training convolutions; the losses stay float32)."""
    if name in ("auto", "cuda") and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        return torch.device("cuda")
    if name == "cuda":
        raise RuntimeError("training device cuda asked for, but torch sees no CUDA device")
    return torch.device("cpu")


def on_device(pairs: list[Pair], device: torch.device) -> list[Pair]:
    """The pairs with their images on device, each subject's tensor moved once (pairs share them)."""
    if device.type == "cpu":
        return pairs
    moved: dict[int, torch.Tensor] = {}

    def to(t: torch.Tensor) -> torch.Tensor:
        if id(t) not in moved:
            moved[id(t)] = t.to(device)
        return moved[id(t)]

    return [Pair(p.name, to(p.fixed), to(p.moving), p.fixed_labels, p.moving_labels) for p in pairs]


def soft_dice(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    dims = (2, 3, 4)
    return 1.0 - (2.0 * (a * b).sum(dims) / (a.sum(dims) + b.sum(dims)).clamp_min(1e-5)).mean()


def pair_loss(net: torch.nn.Module, pair: Pair, settings: TrainSettings, losses: Losses, factor: int
              ) -> tuple[torch.Tensor, dict[str, float]]:
    from .network import downsample

    _, ddf, warped = predict(net, pair.fixed, pair.moving, settings.grid_scale, factor)
    small = tuple(ddf.shape[2:])
    f = downsample(pair.fixed, small)
    sim = losses.lncc(warped, f)
    bend = losses.bending(ddf)
    total = settings.lncc_weight * sim + settings.bending_weight * bend
    terms = {"lncc": float(sim.detach()), "bending": float(bend.detach())}
    if settings.supervision == "weak":
        values = shared_labels(pair)
        if values.size:
            fl = downsample(one_hot(pair.fixed_labels, values).to(pair.fixed.device), small)
            ml = downsample(one_hot(pair.moving_labels, values).to(pair.fixed.device), small)
            dice = soft_dice(losses.warp(ml, ddf), fl)
            total = total + settings.dice_weight * dice
            terms["dice_loss"] = float(dice.detach())
    terms["loss"] = float(total.detach())
    return total, terms


@torch.no_grad()
def validate(net: torch.nn.Module, pairs: list[Pair], settings: TrainSettings, factor: int) -> float:
    """Mean label Dice of the val pairs at the working grid (labels warped nearest)."""
    from ..torchreg.fields import warp

    if not pairs:
        return float("nan")
    net.eval()
    scores = []
    for p in pairs:
        u, _, _ = predict(net, p.fixed, p.moving, settings.grid_scale, factor)
        ml = torch.from_numpy(p.moving_labels.astype(np.float32))[None, None].to(u.device)
        wl = warp(ml, u, mode="nearest").cpu().numpy()[0, 0].astype(np.int64)
        d = dice_per_label(p.fixed_labels, wl, shared_labels(p))
        scores.append(float(np.mean(list(d.values()))) if d else float("nan"))
    net.train()
    return float(np.nanmean(scores))


def _resumable(settings: dict[str, Any]) -> dict[str, Any]:
    """What must match for a checkpoint to go on: everything but how long to train."""
    return {k: v for k, v in settings.items() if k not in ("steps", "max_minutes")}


def train(settings: TrainSettings, pairs: list[Pair], val: list[Pair], out_dir: str | Path,
          describe: dict[str, Any]) -> dict[str, Any]:
    """Train (or resume), write ``model.pt`` (the best by validation Dice), ``training.tsv`` and
    ``training.png`` under out_dir; return the model file's description."""
    if not pairs:
        raise ValueError("no training pairs: the learned method's training subjects are missing or failed")
    out = Path(out_dir)
    ckpt = out / "checkpoints" / "last.pt"
    torch.manual_seed(settings.seed)
    np.random.seed(settings.seed)
    device = training_device(settings.device)
    pairs, val = on_device(pairs, device), on_device(val, device)
    net = build_network(**settings.network()).to(device)  # initialised on the CPU: the same weights on any device
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    factor = pooling_factor(settings.channels)
    losses = _losses(settings)
    step, history, best = 0, [], {"dice": -1.0, "step": 0, "state": None}
    if ckpt.exists():
        doc = checkpoint.read(ckpt, "training checkpoint")
        if _resumable(doc.get("settings", {})) == _resumable(asdict(settings)):
            net.load_state_dict(doc["state_dict"])
            opt.load_state_dict(doc["optimizer"])
            step, history, best = int(doc["step"]), list(doc["history"]), dict(doc["best"])
            log.info("resuming training from step %d (%s)", step, ckpt)
        else:
            log.warning("checkpoint %s was made with other settings: training from step 0", ckpt)

    def cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in state.items()}

    def save_checkpoint() -> None:
        checkpoint.save_atomic({"format": checkpoint.FORMAT, "network": settings.network(), "grid_scale": settings.grid_scale,
                                "state_dict": cpu(net.state_dict()), "optimizer": opt.state_dict(), "step": step,
                                "history": history, "best": best, "settings": asdict(settings)}, ckpt)

    net.train()
    if step == 0 and val:  # the untrained network's field is ~0: the affine alone, the curve's baseline
        history.append({"step": 0, "seconds": 0.0, "val_dice": validate(net, val, settings, factor)})
        log.info("step 0 (affine only): val Dice %.4f", history[-1]["val_dice"])
    t_start = time.perf_counter()
    while step < settings.steps:
        if settings.max_minutes and time.perf_counter() - t_start > 60 * settings.max_minutes:
            log.warning("training stopped at step %d after %.0f min (max_minutes)", step, settings.max_minutes)
            if history and history[-1]["step"] == step and not np.isfinite(history[-1]["val_dice"]) and val:
                history[-1]["val_dice"] = validate(net, val, settings, factor)  # the last weights are judged too
                if history[-1]["val_dice"] > best["dice"]:
                    best = {"dice": float(history[-1]["val_dice"]), "step": step, "state": cpu(net.state_dict())}
            break
        rng = np.random.default_rng([settings.seed, step])
        opt.zero_grad(set_to_none=True)
        terms: dict[str, float] = {}
        t0 = time.perf_counter()
        for i in rng.integers(len(pairs), size=settings.batch_size):
            loss, t = pair_loss(net, pairs[int(i)], settings, losses, factor)
            (loss / settings.batch_size).backward()
            for k, v in t.items():
                terms[k] = terms.get(k, 0.0) + v / settings.batch_size
        opt.step()
        step += 1
        row = {"step": step, **terms, "seconds": time.perf_counter() - t0, "val_dice": float("nan")}
        if step % settings.val_every == 0 or step == settings.steps:
            row["val_dice"] = validate(net, val, settings, factor)
            score = row["val_dice"] if np.isfinite(row["val_dice"]) else -row["loss"]
            if score > best["dice"]:
                best = {"dice": float(score), "step": step, "state": cpu(net.state_dict())}
            log.info("step %d: loss %.4f, val Dice %.4f", step, row["loss"], row["val_dice"])
        history.append(row)
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            save_checkpoint()
    if best["state"] is None:  # no validation ran (steps 0 or stopped early): the last weights
        best = {"dice": float("nan"), "step": step, "state": cpu(net.state_dict())}
    save_checkpoint()
    baseline = next((r["val_dice"] for r in history if r["step"] == 0), float("nan"))
    if np.isfinite(baseline) and np.isfinite(best["dice"]) and best["dice"] <= baseline:
        log.warning("the kept model (step %d, val Dice %.4f) is no better than the affine alone on the validation "
                    "pairs (%.4f): train longer, or check the training data", best["step"], best["dice"], baseline)
    doc = {"format": checkpoint.FORMAT, "network": settings.network(), "grid_scale": settings.grid_scale,
           "state_dict": best["state"], "settings": asdict(settings), "best_step": best["step"],
           "best_val_dice": best["dice"], "affine_val_dice": baseline, "steps_done": step, **describe}
    checkpoint.save_atomic(doc, out / "model.pt")
    write_curve(history, out)
    return {k: v for k, v in doc.items() if k != "state_dict"}


def write_curve(history: list[dict[str, Any]], out: Path) -> None:
    cols = ["step", "loss", "lncc", "bending", "dice_loss", "val_dice", "seconds"]
    lines = ["\t".join(cols)] + ["\t".join(f"{row.get(c, float('nan')):.6g}" for c in cols) for row in history]
    write_text_atomic("\n".join(lines) + "\n", out / "training.tsv")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = [r["step"] for r in history]
    ax.plot(steps, [r.get("loss", np.nan) for r in history], lw=0.8, label="training loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    val = [(r["step"], r["val_dice"]) for r in history if np.isfinite(r.get("val_dice", np.nan))]
    if val:
        ax2 = ax.twinx()
        ax2.plot(*zip(*val), "o-", color="C1", label="validation Dice")
        ax2.set_ylabel("validation Dice")
    ax.set_title("training curve")
    fig.tight_layout()
    fig.savefig(out / "training.png", dpi=100)
    plt.close(fig)


def train_from_files(settings: dict[str, Any], pairs: list[dict[str, str]], val: list[dict[str, str]],
                     out_dir: str, describe: dict[str, Any]) -> dict[str, Any]:
    """The training rule's call: pairs and val are the training and validation subjects' rows
    (cohortreg.learn.plan.subject_row). The model trains on every ordered pair of training subjects
    (cohortreg.learn.data)."""
    from .data import all_pairs, crop_to_brains, load_subjects, validation_pairs

    s = TrainSettings.from_params(settings)
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    t0 = time.perf_counter()
    full = load_subjects(pairs, references=True), load_subjects(val, references=False)
    train_subjects, val_subjects = crop_to_brains(*full, margin_mm=s.crop_margin_mm)
    train_pairs, val_pairs = all_pairs(train_subjects), validation_pairs(val_subjects, train_subjects)
    grids = {x.cohort: (tuple(f.image.shape[2:]), tuple(x.image.shape[2:])) for f, x in zip(full[0], train_subjects)}
    log.info("loaded %d training subjects (%d pairs) and %d validation subjects (%d pairs) in %.1f s; each cohort's "
             "grid cut to its brains: %s", len(train_subjects), len(train_pairs), len(val_subjects), len(val_pairs),
             time.perf_counter() - t0, ", ".join(f"{c} {a} -> {b}" for c, (a, b) in grids.items()))
    return train(s, train_pairs, val_pairs, out_dir, describe)
