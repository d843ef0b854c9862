"""`e2e-compress compress | decompress | info`.

  e2e-compress compress [--model=NAME_OR_PATH] IN.png OUT.e2ec [--verify]
  e2e-compress compress --target_bpp=0.5 IN.png OUT.e2ec  (or --target_psnr=32;
      --model=GLOB picks the family, default bls2017-mse-*)
  e2e-compress compress IN... --output_dir=DIR     (batch; globs allowed)
  e2e-compress decompress IN.e2ec OUT.png [--model=NAME_OR_PATH]
  e2e-compress decompress IN... --output_dir=DIR
  e2e-compress info MODEL_OR_FILE
"""

import glob
import json
import os

from absl import flags

FLAGS = flags.FLAGS

flags.DEFINE_string("model", None,
                    "Shipped model name or SavedModel path. compress: default "
                    "bls2017-mse-q4. decompress: default is the model the file names.")
flags.DEFINE_float("target_bpp", None,
                   "compress: per image, the shipped model giving the best"
                   " quality within this many bits per pixel (whole file).")
flags.DEFINE_float("target_psnr", None,
                   "compress: per image, the shipped model giving the smallest"
                   " file with at least this PSNR-RGB (dB).")
flags.DEFINE_bool("verify", False,
                  "compress: decode again and print PSNR and MS-SSIM against the"
                  " input, and a JPEG of at least the same size.")
flags.DEFINE_bool("overwrite", False, "Replace an existing output file.")
flags.DEFINE_integer("max_pixels", None,
                     "decompress/fuzz: refuse files stating a larger image"
                     " (default 200 megapixels for decompress, 4 for fuzz).")
flags.DEFINE_bool("drop_alpha", False,
                  "Discard an input's alpha channel instead of refusing it.")
flags.DEFINE_string("output_dir", None,
                    "compress/decompress: batch mode, code every input (paths"
                    " or globs) into this folder, continuing past failures."
                    " evaluate: where results go (default ./results).")
flags.DEFINE_bool("progress", True, "Show a progress bar in batch mode.")


def _jobs(argv, what, suffix):
    """(src, dst) pairs: `IN OUT`, or `IN... --output_dir=DIR` (globs allowed)."""
    args = argv[1:]
    if FLAGS.output_dir:
        sources = []
        for arg in args:
            matches = sorted(glob.glob(arg)) if glob.has_magic(arg) else [arg]
            if not matches:
                raise FileNotFoundError(f"no files match {arg!r}")
            sources.extend(matches)
        if not sources:
            raise ValueError(f"{what} --output_dir needs at least one input")
        os.makedirs(FLAGS.output_dir, exist_ok=True)
        jobs = [(src, os.path.join(FLAGS.output_dir, os.path.splitext(
            os.path.basename(src))[0] + suffix)) for src in sources]
        outputs = [dst for _, dst in jobs]
        if len(set(outputs)) != len(outputs):
            raise ValueError("two inputs have the same name; their outputs would"
                             f" collide in {FLAGS.output_dir}")
        return jobs
    if len(args) != 2:
        raise ValueError(f"{what} takes IN OUT, or IN... --output_dir=DIR;"
                         f" got {args}")
    return [(args[0], args[1])]


def _check_output(src, dst):
    if os.path.abspath(src) == os.path.abspath(dst):
        raise ValueError(f"the output {dst} would overwrite the input")
    if os.path.exists(dst) and not FLAGS.overwrite:
        raise FileExistsError(f"{dst} exists; pass --overwrite to replace it")


def _run(jobs, one):
    """Runs `one(src, dst)` per job. A single job raises its error; a batch
    goes on past failures, lists them, and returns 1 if any."""
    if len(jobs) == 1:
        _check_output(*jobs[0])
        one(*jobs[0])
        return 0
    from tqdm import tqdm

    failures, stuck = [], False
    for src, dst in tqdm(jobs, unit="file", disable=not FLAGS.progress):
        try:
            _check_output(src, dst)
            one(src, dst)
        except Exception as e:  # noqa: BLE001 - a batch continues past a bad file
            failures.append((src, str(e) or type(e).__name__))
            stuck = stuck or getattr(e, "stuck_thread", False)
    print(f"{len(jobs) - len(failures)} of {len(jobs)} files done")
    for src, message in failures:
        print(f"FAILED {src}: {message}")
    if stuck:
        from e2e_compress.cli import main

        main._exit_now(1)
    return 1 if failures else 0


_MS_SSIM_MAX_PIXELS = 16_000_000


def _report(name, bpp, image, decoded):
    from e2e_compress import metrics

    line = f"{name:<22s} {bpp:7.4f} bpp  PSNR {metrics.psnr(image, decoded):6.2f} dB"
    if image.shape[0] * image.shape[1] > _MS_SSIM_MAX_PIXELS:
        line += "  MS-SSIM not computed (over 16 megapixels; it needs ~40 bytes"
        line += " a pixel)"
    elif min(image.shape[:2]) >= metrics.MS_SSIM_MIN_SIDE:
        value = metrics.ms_ssim(image, decoded)
        line += f"  MS-SSIM {value:.4f} ({metrics.ms_ssim_db(value):.2f} dB)"
    else:
        line += f"  MS-SSIM n/a (< {metrics.MS_SSIM_MIN_SIDE} px)"
    print(line)


def compress_main(argv):
    from e2e_compress import baselines, codec, image_io, metrics, targets

    jobs = _jobs(argv, "compress", ".e2ec")
    targeted = FLAGS.target_bpp is not None or FLAGS.target_psnr is not None
    if FLAGS.target_bpp is not None and FLAGS.target_psnr is not None:
        raise ValueError("give --target_bpp or --target_psnr, not both")
    if targeted:
        models = [codec.load_model(p) for p in targets.family(FLAGS.model)]
    else:
        models = [codec.load_model(FLAGS.model)]

    def one(src, dst):
        image = image_io.read_image(src, drop_alpha=FLAGS.drop_alpha)
        if targeted:
            choice = targets.choose(models, image, target_bpp=FLAGS.target_bpp,
                                    target_psnr=FLAGS.target_psnr)
            model, data = choice.model, choice.data
        else:
            model, data = models[0], codec.compress(models[0], image)
        name = os.path.basename(model.path.rstrip("/"))
        image_io.atomic_write_bytes(dst, data, overwrite=FLAGS.overwrite)
        h, w = image.shape[:2]
        bpp = metrics.bpp_from_num_bytes(len(data), h, w)
        print(f"{src}: {w}x{h} -> {dst}: {len(data)} bytes, {bpp:.4f} bpp"
              f" (whole file), model {name}")
        if targeted:
            target = (f"<= {FLAGS.target_bpp} bpp" if FLAGS.target_bpp is not None
                      else f">= {FLAGS.target_psnr} dB")
            verdict = "met" if choice.met else "NOT met (closest model used)"
            print(f"  target {target}: {verdict}; {choice.tried} of {len(models)}"
                  " models tried")
        if FLAGS.verify:
            decoded = codec.decompress(data, model)
            _report(f"e2e ({name})", bpp, image, decoded)
            quality, jpeg = baselines.jpeg_at_least(image, len(data))
            _report(f"JPEG q={quality} (4:2:0)", metrics.bpp_from_num_bytes(
                len(jpeg), h, w), image, baselines.decode(jpeg))

    return _run(jobs, one)


def decompress_main(argv):
    from e2e_compress import codec, image_io

    jobs = _jobs(argv, "decompress", ".png")

    def one(src, dst):
        if not os.path.isfile(src):
            raise FileNotFoundError(f"no such file: {src}")
        with open(src, "rb") as f:
            data = f.read()
        image = codec.decompress(data, FLAGS.model, max_pixels=FLAGS.max_pixels)
        image_io.write_png(dst, image, overwrite=FLAGS.overwrite)
        print(f"{src} -> {dst}: {image.shape[1]}x{image.shape[0]}")

    return _run(jobs, one)


def info_main(argv):
    from e2e_compress import container, export, metrics, zoo

    if len(argv) != 2:
        raise ValueError(f"info takes one model name, model path or .e2ec file,"
                         f" got {argv[1:]}")
    target = argv[1]
    if os.path.isfile(target):
        with open(target, "rb") as f:
            data = f.read()
        packed = container.unpack(data)
        try:
            model = os.path.basename(zoo.find_by_id(packed.model_id).rstrip("/"))
        except zoo.ModelNotFoundError:
            model = "not among the shipped models"
        print(json.dumps(dict(
            file=target, bytes=len(data), format_version=container.VERSION,
            model_id=packed.model_id, model=model, height=packed.height,
            width=packed.width, payload_bytes=len(packed.payload),
            bpp=round(metrics.bpp_from_num_bytes(
                len(data), packed.height, packed.width), 5)), indent=2))
        return 0
    print(json.dumps(export.read_model_info(zoo.resolve(target)), indent=2,
                     sort_keys=True))
    return 0


def models_main(argv):
    """Lists the shipped models with their training and Kodak measurements."""
    from e2e_compress import zoo

    if len(argv) > 1:
        raise ValueError(f"models takes no arguments, got {argv[1:]}")
    shipped = zoo.list_models()
    if not shipped:
        print(f"no models in {zoo.models_dir()}")
        return 1
    print(f"{'name':<19s} {'D':<7s} {'lmbda':>7s} {'filters':>7s} {'steps':>7s}"
          f" {'CPU h':>6s} {'MB':>5s}  Kodak: bpp / PSNR-RGB / MS-SSIM-RGB")
    summed = 0.0
    for name, info in shipped.items():
        record_path = os.path.join(info["path"], "record.json")
        kodak = {}
        if os.path.exists(record_path):
            with open(record_path) as f:
                kodak = json.load(f).get("kodak", {})
        measured = (f"{kodak['bpp']:.3f} / {kodak['psnr-rgb']:.2f} dB /"
                    f" {kodak['ms-ssim-rgb']:.4f}" if kodak else "not measured")
        size = zoo.size_bytes(info["path"]) / 1e6
        totals = zoo.training_totals(info)  # warm-start parents included
        print(f"{name:<19s} {info['distortion']:<7s} {info['lmbda']:7.4g}"
              f" {info['num_filters']:7d} {totals['steps']:7d}"
              f" {totals['cpu_hours']:6.2f} {size:5.1f}  {measured}")
        summed += totals["cpu_hours"]
    print(f"CPU hours behind these {len(shipped)} models:"
          f" {zoo.distinct_cpu_hours(shipped.values()):.2f}, each training"
          f" run once ({summed:.2f} summed over the rows, where a shared"
          " warm-start ancestor counts once per model)")
    return 0
