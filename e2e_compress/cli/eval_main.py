"""`e2e-compress evaluate`: rate-distortion of codecs over a set of images.

  e2e-compress evaluate --images=../shared/data/kodak \
      --codecs='bls2017-mse-*,jpeg,jpeg2000,webp,avif' --output_dir=results/kodak
"""

import json
import os

from absl import flags

FLAGS = flags.FLAGS

flags.DEFINE_string("images", None, "Folder of images, or a glob.")
flags.DEFINE_list("codecs", ["bls2017-mse-*", "jpeg", "jpeg2000"],
                  "Shipped model names or globs (a glob makes one curve), "
                  "SavedModel paths, and baselines: jpeg, jpeg2000, webp, avif.")
# --output_dir (default ./results here) and --progress are defined in
# codec_main: absl flags are global to the command.
flags.DEFINE_bool("same_size_jpeg", False,
                  "Also compare each model image by image with the smallest JPEG"
                  " at least as large (writes <model>_vs_jpeg.json).")


def main(argv):
    from e2e_compress import evaluate

    if len(argv) > 1:
        raise ValueError(f"evaluate takes no positional arguments, got {argv[1:]}")
    if not FLAGS.images:
        raise ValueError("--images is required (a folder or a glob)")
    output_dir = FLAGS.output_dir or "results"
    paths = evaluate.list_image_files(FLAGS.images)
    codecs = [evaluate.make_codec(spec) for spec in FLAGS.codecs]
    failed = 0
    for codec in codecs:
        result = evaluate.evaluate_codec(codec, paths, progress=FLAGS.progress)
        path = evaluate.write_result(result, output_dir)
        r = result["results"]
        for i, setting in enumerate(result["settings"]):
            print(f"{codec.name:<14s} {str(setting):<18s} {r['bpp'][i]:7.4f} bpp"
                  f"  PSNR {r['psnr-rgb'][i]:6.2f} dB"
                  f"  MS-SSIM {r['ms-ssim-rgb'][i]:.4f}"
                  f"  enc {r['encoding_time'][i]:.3f} s  dec"
                  f" {r['decoding_time'][i]:.3f} s")
        for f in result["failures"]:
            print(f"FAILED {f['image']}: {f['error']}")
        failed += len(result["failures"])
        print(f"wrote {path}")
        if FLAGS.same_size_jpeg and isinstance(codec, evaluate.LearnedCodec):
            for model_path in codec.settings:
                cmp = evaluate.compare_with_jpeg_at_same_size(
                    model_path, paths, progress=FLAGS.progress)
                out = os.path.join(output_dir, f"{cmp['model']}_vs_jpeg.json")
                with open(out, "w") as f:
                    json.dump(cmp, f, indent=1)
                ours, jpeg = cmp["mean"]["ours"], cmp["mean"]["jpeg"]
                print(f"{cmp['model']}: {ours['bpp']:.4f} bpp {ours['psnr-rgb']:.2f}"
                      f" dB; JPEG at >= same size: {jpeg['bpp']:.4f} bpp"
                      f" {jpeg['psnr-rgb']:.2f} dB; wrote {out}")
    return 1 if failed else 0
