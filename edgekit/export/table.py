"""The parity table printed by ``edgekit export`` and the export benchmark."""

COLUMNS = (("artifact", 44), ("format", 7), ("precision", 10), ("size", 10), ("parity", 34), ("status", 0))


def format_size(size_bytes) -> str:
    if size_bytes is None:
        return "-"
    for unit in ("B", "KiB", "MiB"):
        if size_bytes < 1024 or unit == "MiB":
            return f"{size_bytes:.0f} {unit}" if unit == "B" else f"{size_bytes:.1f} {unit}"
        size_bytes /= 1024


def format_parity(parity) -> str:
    """fp32: the max abs difference; int8: mean feature cosine and whole-model top-1 agreement."""
    if not parity:
        return "-"
    if "cosine" in parity:
        return f"cos {parity['cosine']:.5f}  top-1 {parity['top1_agreement']:.1%}"
    return f"max|diff| {parity['max_abs_diff']:.2g}"


def row(*cells) -> str:
    return "".join(f"{cell:<{width}}" if width else str(cell) for cell, (_, width) in zip(cells, COLUMNS)).rstrip()


def header() -> str:
    return row(*(name for name, _ in COLUMNS))


def result_row(result) -> str:
    """One ``ArtifactResult``; a failure names what missed its target."""
    status = result.status if result.status != "failed" else "FAILED: " + "; ".join(result.problems)
    return row(result.file, result.format, result.precision, format_size(result.size_bytes),
               format_parity(result.parity), status)
