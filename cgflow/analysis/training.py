"""Figures of a training log."""

from __future__ import annotations

from pathlib import Path

from cgflow.io import atomic_write


def plot_re_log(history: list[dict], path: str | Path, title: str) -> None:
    """RE training at a glance: S_rel estimate, N_eff / N with re-simulations, |grad|."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = [h["update"] for h in history]
    resim = [h["update"] for h in history if h["resimulated"]]
    fig, axes = plt.subplots(3, 1, figsize=(6, 7), sharex=True)
    axes[0].plot(k, [h["loss"] for h in history], lw=1, label="training frames")
    val = [h.get("val_loss", float("nan")) for h in history]
    if any(v == v for v in val):  # not all NaN
        axes[0].plot(k, val, lw=1, label="held out")
        best = min((v, u) for u, v in zip(k, val, strict=True) if v == v)[1]
        axes[0].axvline(best, color="k", ls=":", lw=1, label=f"lowest held-out: update {best}")
        axes[0].legend(fontsize=7)
    axes[0].set_ylabel("S_rel + const")
    axes[1].plot(k, [h["n_eff_fraction"] for h in history], lw=1)
    for u in resim:
        axes[1].axvline(u, color="0.8", lw=0.5, zorder=0)
    axes[1].set_ylabel("N_eff / N\n(grey: re-simulated)")
    axes[1].set_ylim(0, 1.05)
    axes[2].semilogy(k, [max(h["grad_norm"], 1e-12) for h in history], lw=1)
    axes[2].set_ylabel("|gradient|")
    axes[2].set_xlabel("update")
    axes[0].set_title(title)
    fig.tight_layout()
    atomic_write(Path(path), lambda fh: fig.savefig(fh, format="png", dpi=100))
    plt.close(fig)


def plot_diverged(path, title: str, reason: str) -> None:
    """The training-log figure of a run that diverged: its reason, in words."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.5))
    ax.axis("off")
    ax.set_title(f"{title}: training diverged", color="tab:red")
    ax.text(0.0, 0.9, "\n".join(textwrap.wrap(reason, 80)), va="top", fontsize=8)
    atomic_write(Path(path), lambda fh: fig.savefig(fh, format="png", dpi=100))
    plt.close(fig)
