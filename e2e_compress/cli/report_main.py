"""`e2e-compress report`: RD figure, BD-rate tables and a visual comparison.

  e2e-compress report --results_dir=results/kodak \
      --compare_image=../shared/data/kodak/kodim23.png
"""

import glob
import os

from absl import flags

FLAGS = flags.FLAGS

flags.DEFINE_string("results_dir", "results/kodak",
                    "Folder of <codec>.json results; figures are written here.")
flags.DEFINE_string("compare_image", None,
                    "Image for the visual comparison (JPEG / ours / JPEG 2000 at"
                    " matched bpp), one row per shipped model given in --compare_models.")
flags.DEFINE_list("compare_models", [], "Shipped models for the visual comparison.")
flags.DEFINE_list("table_anchors", ["JPEG", "JPEG 2000"],
                  "Result names the per-model table (models.md) compares each"
                  " model against, besides the paper's curve (which is"
                  " used only for results on the 24 Kodak images).")
flags.DEFINE_bool("write_records", False,
                  "Also write checkpoints/<model>/record.json (training and"
                  " Kodak numbers, see e2e_compress/records.py) for every"
                  " shipped model with a matching <model>_vs_jpeg.json.")
flags.DEFINE_list("crop", ["120", "260", "200", "200"],
                  "Crop of the visual comparison: top, left, height, width.")


def main(argv):
    from e2e_compress import plot, reference

    if len(argv) > 1:
        raise ValueError(f"report takes no positional arguments, got {argv[1:]}")
    paths = sorted(p for p in glob.glob(os.path.join(FLAGS.results_dir, "*.json"))
                   if not p.endswith(("_vs_jpeg.json", "bd_rates.json",
                                      "models.json")))
    if not paths:
        raise FileNotFoundError(f"no results in {FLAGS.results_dir}")
    paper = (reference.BLS2017_KODAK
             if reference.is_kodak(plot.load_results(paths)) else None)
    if paper is None:
        print("the paper's published curve is a Kodak mean and these results"
              " are not on the 24 Kodak images, so it is left out")
    rows = plot.write_rd_outputs(paths, FLAGS.results_dir, reference=paper)
    print(plot.markdown_bd_table(rows))
    _model_table(paths, paper)
    if FLAGS.write_records:
        from e2e_compress import records

        written = records.write_records(FLAGS.results_dir)
        print(f"wrote {len(written)} model records: {', '.join(written) or 'none'}")
    if FLAGS.compare_image and FLAGS.compare_models:
        _visual_comparison()
    return 0


def _model_table(paths, paper):
    """models.md / models.json: one row per shipped model that has results,
    with its rate against each baseline and, if `paper` is given, the
    paper's curve at equal quality."""
    import json

    from e2e_compress import plot, zoo

    shipped = zoo.list_models()
    results = plot.load_results(paths)
    learned = [r for r in results
               if any(s in shipped for s in r.get("settings") or [])]
    if not learned:
        return
    anchors = sorted((r for r in results if r["name"] in FLAGS.table_anchors),
                     key=lambda r: FLAGS.table_anchors.index(r["name"]))
    if paper is not None:
        anchors.append(paper)
    rows = [row for r in learned for row in plot.point_table(r, anchors)]
    extra = {}
    for row in rows:
        info = shipped.get(row["setting"], {})
        size = zoo.size_bytes(info["path"]) if info else 0
        extra[row["setting"]] = {
            "λ": f"{info.get('lmbda', float('nan')):g}",
            "D": info.get("distortion", ""),
            "filters": info.get("num_filters", ""),
            "steps": f"{zoo.training_totals(info)['steps']:,}" if info else "",
            "size": f"{size / 1e6:.1f} MB"}
    with open(os.path.join(FLAGS.results_dir, "models.json"), "w") as f:
        json.dump([dict(r, **extra[r["setting"]]) for r in rows], f, indent=1)
    names = [a["name"] for a in anchors]
    table = plot.markdown_point_table(
        rows, names, extra, ("λ", "D", "filters", "steps", "size"))
    with open(os.path.join(FLAGS.results_dir, "models.md"), "w") as f:
        f.write(table + "\n")
    print(table)


def _visual_comparison():
    from e2e_compress import baselines, codec, image_io, metrics, plot

    image = image_io.read_image(FLAGS.compare_image)
    h, w = image.shape[:2]
    rows = []
    for name in FLAGS.compare_models:
        model = codec.load_model(name)
        data = codec.compress(model, image)
        bpp = metrics.bpp_from_num_bytes(len(data), h, w)
        quality, jpeg = baselines.jpeg_at_least(image, len(data))
        j2k = baselines.encode_jpeg2000(image, bpp)
        rows.append([
            (f"JPEG q={quality}", baselines.decode(jpeg),
             metrics.bpp_from_num_bytes(len(jpeg), h, w)),
            (f"ours ({name})", codec.decompress(data, model), bpp),
            ("JPEG 2000", baselines.decode(j2k),
             metrics.bpp_from_num_bytes(len(j2k), h, w)),
        ])
    box = tuple(int(v) for v in FLAGS.crop)
    out = os.path.join(FLAGS.results_dir, "visual_comparison.png")
    plot.visual_comparison(image, rows, box, out)
    print(f"wrote {out}")
