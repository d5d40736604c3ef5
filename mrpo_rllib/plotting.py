"""The finishing touches every line plot of the package shares: labelled axes with a light
grid and a small legend, and a figure laid out, saved, then closed."""

from __future__ import annotations


def finish_axes(
    ax, xlabel: str, ylabel: str | None = None, title: str | None = None, title_size=None
) -> None:
    """Axis labels, a title (at ``title_size`` when given), a light grid and a small legend."""
    if title is not None:
        ax.set_title(title, **({} if title_size is None else {"fontsize": title_size}))
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def save_figure(fig, path: str) -> None:
    """``fig`` laid out tightly, written to ``path`` and closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
