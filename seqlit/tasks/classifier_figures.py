"""The classifier's test figure: the confusion matrix (rows: true class, columns: predicted), counts and shares.

Drawn on global rank 0 from the confusion matrix torchmetrics summed over every process, logged to TensorBoard as
``test/confusion_matrix`` and saved as ``confusion_matrix_test.png`` in the run folder (when there is one).
"""

from __future__ import annotations

import lightning as L

from seqlit.tasks.outputs import publish_figure


class ConfusionMatrixFigure(L.Callback):
    """At test end, draw the test confusion matrix (rows: true class, columns: predicted); log it and save a PNG."""

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        confusion = getattr(pl_module, "confusion", None)
        if confusion is None or not confusion.update_called:
            return
        counts = confusion.compute().cpu()  # (N, N), summed over processes by torchmetrics
        if trainer.global_rank != 0:
            return
        import matplotlib

        matplotlib.use("Agg")  # no display on servers; must precede pyplot
        import matplotlib.pyplot as plt

        names = list(getattr(pl_module, "label_names", [str(i) for i in range(len(counts))]))
        n = len(names)
        share = counts.double() / counts.sum(dim=1, keepdim=True).clamp(min=1)  # colour: fraction of each true class
        size = min(12.0, 3.0 + 0.6 * n)
        fig, ax = plt.subplots(figsize=(size, size * 0.85))
        image = ax.imshow(share.numpy(), cmap="Blues", vmin=0.0, vmax=1.0)
        fig.colorbar(image, ax=ax, label="share of the true class")
        if n <= 20:  # beyond that the numbers no longer fit in the cells
            for i in range(n):
                for j in range(n):
                    colour = "white" if share[i, j] > 0.5 else "black"
                    ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", color=colour, fontsize=8)
        ax.set_xticks(range(n), names, rotation=45 if n > 6 else 0, ha="right" if n > 6 else "center")
        ax.set_yticks(range(n), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        accuracy = float(counts.diag().sum() / counts.sum().clamp(min=1))
        ax.set_title(f"Test confusion matrix (accuracy {accuracy:.3f})")
        publish_figure(trainer, fig, "test/confusion_matrix", "confusion_matrix_test.png")
