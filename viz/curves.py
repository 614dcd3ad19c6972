from pathlib import Path

from regmix.rundir import RunDir

from .style import integer_ticks, plain_log_ticks


def read_metrics(run_dir, kind="epoch"):
    """The metrics records of one kind ('step' or 'epoch') of a run directory."""
    return RunDir(run_dir).metrics(kind)


def plot_loss_terms(run_dir, ax=None):
    """Every training loss term per epoch (train_* columns of the epoch records), one line each."""
    import matplotlib.pyplot as plt
    records = read_metrics(run_dir)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3), layout="constrained")
    epochs = [r["epoch"] + 1 for r in records]
    terms = [k for k in records[0] if k.startswith("train_") and k != "train_loss"] if records else []
    for key in ["train_loss", *terms]:
        ax.plot(epochs, [r[key] for r in records], marker="o", ms=3, label=key.removeprefix("train_"))
    # the KL terms are orders of magnitude below the cross-entropy: on a linear axis they lie on zero
    ax.set_yscale("log")
    plain_log_ticks(ax.yaxis)
    integer_ticks(ax.xaxis)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (training mean, log scale)")
    ax.set_title(Path(run_dir).name)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax.figure
