from pathlib import Path

FORMATS = ("pdf", "svg", "png")


def save_figure(fig, path, formats=FORMATS, dpi=300):
    """Save a matplotlib figure as path.<fmt> for each format (fonts embedded as TrueType in PDF)."""
    import matplotlib
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    with matplotlib.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none"}):
        for fmt in formats:
            if fmt not in FORMATS:
                raise ValueError(f"formats: each must be one of {', '.join(FORMATS)}, got {fmt!r}")
            target = path.with_suffix(f".{fmt}")
            fig.savefig(target, dpi=dpi, bbox_inches="tight")
            written.append(target)
    return written
