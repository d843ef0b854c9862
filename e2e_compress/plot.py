"""Figures and tables from evaluation results (matplotlib, PNG).

Every function takes result records of the shape `evaluate.evaluate_codec`
returns (CompressAI's), so published results files overlay ours. Figures are
matplotlib `Figure` objects made without pyplot, so importing this module
leaves the user's backend alone (a notebook shows a returned figure with
`display(fig)`).
"""

import json
import os

import numpy as np
from matplotlib.figure import Figure

from e2e_compress import bdrate, metrics

PANELS = (("psnr-rgb", "PSNR RGB (dB)"), ("psnr-y", "PSNR Y' (dB)"),
          ("ms-ssim-rgb-db", "MS-SSIM RGB (dB)"))


def load_results(paths: list[str]) -> list[dict]:
    out = []
    for path in paths:
        with open(path) as f:
            out.append(json.load(f))
    return out


def quality(result: dict, key: str) -> np.ndarray:
    """A quality series; MS-SSIM dB is derived if only MS-SSIM is given."""
    r = result["results"]
    if key in r:
        return np.asarray(r[key], np.float64)
    if key.endswith("-db") and key[:-3] in r:
        return np.array([metrics.ms_ssim_db(v) for v in r[key[:-3]]])
    return np.full(len(r["bpp"]), np.nan)


def rd_figure(results: list[dict], path: str | None = None, title: str = "Kodak",
              max_bpp: float = 2.0) -> Figure:
    """A 3-panel RD figure (bpp against PSNR RGB, PSNR Y', MS-SSIM dB),
    written to `path` (PNG) if given."""
    fig = Figure(figsize=(17, 5.2))
    axes = fig.subplots(1, 3)
    for ax, (key, label) in zip(axes, PANELS):
        for result in results:
            bpp = np.asarray(result["results"]["bpp"])
            q = quality(result, key)
            order = np.argsort(bpp)
            keep = bpp[order] <= max_bpp * 1.1
            style = "--" if "paper" in result["name"] else "-"
            ax.plot(bpp[order][keep], q[order][keep], style, marker="o",
                    markersize=3.5, label=result["name"])
        ax.set_xlabel("bits per pixel (whole file)")
        ax.set_ylabel(label)
        ax.set_xlim(0, max_bpp)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"Rate-distortion on {title}")
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=110)
    return fig


def bd_rate_table(results: list[dict], anchors: list[dict],
                  keys=("psnr-rgb", "ms-ssim-rgb-db")) -> list[dict]:
    """BD-rate (%) of every result against every anchor, per quality key.

    Each row holds, per key, the PCHIP BD-rate under the key itself and the
    2001 cubic-fit BD-rate under `key + "-cubic"` (`bdrate` module); NaN
    where a curve has too few points for the method.
    """
    rows = []
    for result in results:
        for anchor in anchors:
            if anchor is result:
                continue
            row = {"codec": result["name"], "anchor": anchor["name"]}
            for key in keys:
                for method in bdrate.METHODS:
                    suffix = "" if method == "pchip" else "-" + method
                    try:
                        row[key + suffix] = bdrate.bd_rate(
                            anchor["results"]["bpp"], quality(anchor, key),
                            result["results"]["bpp"], quality(result, key),
                            method=method)
                    except ValueError:  # too few points for the method
                        row[key + suffix] = float("nan")
            rows.append(row)
    return rows


def _percent(value: float) -> str:
    """A signed percentage, or a dash where it is undefined (NaN)."""
    return "–" if not np.isfinite(value) else f"{value:+.1f} %"


def markdown_bd_table(rows: list[dict]) -> str:
    lines = ["| codec | anchor | BD-rate PSNR-RGB | BD-rate MS-SSIM dB"
             " | PSNR-RGB, cubic fit | MS-SSIM dB, cubic fit |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['codec']} | {r['anchor']} | {_percent(r['psnr-rgb'])} |"
                     f" {_percent(r['ms-ssim-rgb-db'])} |"
                     f" {_percent(r.get('psnr-rgb-cubic', float('nan')))} |"
                     f" {_percent(r.get('ms-ssim-rgb-db-cubic', float('nan')))} |")
    return "\n".join(lines)


def point_table(result: dict, anchors: list[dict],
                keys=("psnr-rgb", "ms-ssim-rgb-db")) -> list[dict]:
    """One row per setting of `result` (for learned codecs: per model).

    Each row holds the setting's bpp and qualities, and under `"rate"` its
    rate against every anchor's curve at the same quality, in percent
    (`bdrate.rate_difference`; NaN outside the anchor's range): the per-model
    counterpart of the BD-rate of a whole curve.
    """
    r = result["results"]
    settings = result.get("settings") or list(range(len(r["bpp"])))
    qualities = {key: quality(result, key) for key in keys}
    rows = []
    for i, setting in enumerate(settings):
        row = {"codec": result["name"], "setting": setting, "bpp": r["bpp"][i],
               "ms-ssim-rgb": r.get("ms-ssim-rgb", [float("nan")] * len(settings))[i],
               "rate": {}}
        for key in keys:
            row[key] = float(qualities[key][i])
        for anchor in anchors:
            row["rate"][anchor["name"]] = {
                key: bdrate.rate_difference(anchor["results"]["bpp"],
                                            quality(anchor, key), row["bpp"],
                                            row[key])
                for key in keys}
        rows.append(row)
    return rows


def markdown_point_table(rows: list[dict], anchor_names: list[str],
                         extra: dict | None = None,
                         extra_columns: tuple = ()) -> str:
    """`point_table` rows as markdown: one line per model.

    Args:
      rows: from `point_table`.
      anchor_names: anchors to show, in order.
      extra: setting -> {column: text}, e.g. a model's lambda and size.
      extra_columns: the column names of `extra` to show, in order.
    """
    head = (["model", *extra_columns, "bpp", "PSNR RGB", "MS-SSIM RGB"]
            + [f"rate vs {a} at equal PSNR" for a in anchor_names]
            + [f"rate vs {a} at equal MS-SSIM" for a in anchor_names])
    lines = ["| " + " | ".join(head) + " |",
             "| " + " | ".join(["---"] * (1 + len(extra_columns))
                               + ["---:"] * (len(head) - 1 - len(extra_columns)))
             + " |"]
    for row in rows:
        cells = [f"`{row['setting']}`"]
        cells += [str((extra or {}).get(row["setting"], {}).get(c, "")) for c in
                  extra_columns]
        cells += [f"{row['bpp']:.3f}", f"{row['psnr-rgb']:.2f} dB",
                  f"{row['ms-ssim-rgb']:.4f}"]
        cells += [_percent(row["rate"][a]["psnr-rgb"]) for a in anchor_names]
        cells += [_percent(row["rate"][a]["ms-ssim-rgb-db"]) for a in anchor_names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def visual_comparison(image, panels: list[list[tuple]], box,
                      path: str | None = None) -> Figure:
    """A grid of crops: one row per rate, one column per codec.

    Args:
      image: uint8 `[H, W, 3]`, the original.
      panels: rows of `(title, decoded uint8 [H, W, 3], bpp)`.
      box: `(top, left, height, width)` of the crop.
      path: PNG to write, if given.
    """
    top, left, h, w = box
    rows, cols = len(panels), len(panels[0]) + 1
    fig = Figure(figsize=(3.2 * cols, 3.4 * rows))
    axes = np.atleast_2d(fig.subplots(rows, cols))
    for r, row in enumerate(panels):
        axes[r, 0].imshow(image[top:top + h, left:left + w])
        axes[r, 0].set_title("original", fontsize=9)
        for c, (title, decoded, bpp) in enumerate(row, start=1):
            axes[r, c].imshow(decoded[top:top + h, left:left + w])
            axes[r, c].set_title(f"{title}\n{bpp:.3f} bpp, "
                                 f"{metrics.psnr(image, decoded):.2f} dB",
                                 fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=110)
    return fig


def write_rd_outputs(result_paths: list[str], output_dir: str, reference=None):
    """RD figure and BD-rate table (markdown and JSON) into output_dir."""
    results = load_results(result_paths)
    if reference is not None:
        results.append(reference)
    os.makedirs(output_dir, exist_ok=True)
    rd_figure(results, os.path.join(output_dir, "rd.png"))
    rows = bd_rate_table(results, results)
    with open(os.path.join(output_dir, "bd_rates.json"), "w") as f:
        json.dump(rows, f, indent=1)
    with open(os.path.join(output_dir, "bd_rates.md"), "w") as f:
        f.write(markdown_bd_table(rows) + "\n")
    return rows
