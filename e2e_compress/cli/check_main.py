"""`e2e-compress fuzz | benchmark`: robustness and resource checks, as JSON.

  e2e-compress fuzz --count=20000 --seed=0 --json=results/robustness/fuzz.json
  e2e-compress benchmark --size=6000x4000 --json=results/robustness/large.json
"""

import json
import os

from absl import flags

FLAGS = flags.FLAGS

flags.DEFINE_integer("count", 20000, "fuzz: number of mutated files to decode.")
flags.DEFINE_float("timeout", 30.0, "fuzz: seconds before a case counts as a hang.")
flags.DEFINE_string("json", None, "fuzz/benchmark: also write the result here.")
flags.DEFINE_string("size", "6000x4000",
                    "benchmark: WxH of the large test image (a mosaic of the"
                    " --images photos).")
flags.DEFINE_integer("tile_size", None,
                     "benchmark: tile size for the tiling-cost comparison on"
                     " one Kodak-sized image (default: 256).")


def _write(result):
    text = json.dumps(result, indent=1)
    print(text)
    if FLAGS.json:
        from e2e_compress import image_io

        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.json)), exist_ok=True)
        image_io.atomic_write_bytes(FLAGS.json, text.encode() + b"\n",
                                    overwrite=True)


def fuzz_main(argv):
    from tqdm import tqdm

    from e2e_compress import codec, fuzz, image_io, zoo

    if len(argv) > 1:
        raise ValueError(f"fuzz takes no positional arguments, got {argv[1:]}")
    if FLAGS.count < 1:
        raise ValueError(f"--count must be >= 1, got {FLAGS.count}")
    model_path = zoo.resolve(FLAGS.model)
    model = codec.load_model(model_path)
    sample = image_io.read_image(image_io.sample_path())
    crops = [sample[:64, :64], sample[:37, :100], sample[:1, :1], sample[:16, :48]]
    originals = [codec.compress(model, crop) for crop in crops]
    with tqdm(total=FLAGS.count, unit="case", disable=not FLAGS.progress) as bar:
        result = fuzz.run(model_path, originals, FLAGS.count, seed=FLAGS.seed,
                          timeout=FLAGS.timeout,
                          progress=lambda n: bar.update(n - bar.n),
                          max_pixels=FLAGS.max_pixels or fuzz.MAX_PIXELS)
    result["model"] = os.path.basename(model_path.rstrip("/"))
    result["original_sizes"] = [list(c.shape[:2]) for c in crops]
    _write(result)
    return 1 if result["crash"] or result["hang"] else 0


def benchmark_main(argv):
    from e2e_compress import benchmark, evaluate, zoo

    if len(argv) > 1:
        raise ValueError(f"benchmark takes no positional arguments, got {argv[1:]}")
    try:
        width, height = (int(v) for v in FLAGS.size.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must be WxH, e.g. 6000x4000, got {FLAGS.size!r}")
    if not FLAGS.images:
        raise ValueError("--images is required (photos for the mosaic)")
    paths = evaluate.list_image_files(FLAGS.images)
    model_path = zoo.resolve(FLAGS.model)
    result = dict(
        model=os.path.basename(model_path.rstrip("/")),
        large=benchmark.large_image(model_path, paths, height, width),
        tiling_cost=benchmark.tiling_cost(model_path, paths[0],
                                          FLAGS.tile_size or 256),
    )
    _write(result)
    return 0
