"""`e2e-compress train`: trains one model (one lmbda), resumably.

Example:
  e2e-compress train --train_glob='../shared/data/train/*.png' \
      --lmbda=0.01 --train_dir=~/e2e-train/mse-0.01 \
      --export_to=~/e2e-train/exports/mse-0.01
"""

from absl import flags

from e2e_compress import configs

FLAGS = flags.FLAGS

flags.DEFINE_string("train_glob", None, "Glob of training images (PNG/JPEG).")
flags.DEFINE_string("validation_glob", None,
                    "Glob of validation images; a centre crop of each is used.")
flags.DEFINE_float("lmbda", 0.01,
                   "Rate-distortion trade-off: loss = bpp + lmbda * D, with D the"
                   " MSE on the 0-255 scale (or 1 - MS-SSIM).")
flags.DEFINE_enum("distortion", "mse", list(configs.DISTORTIONS),
                  "Distortion measure D.")
flags.DEFINE_integer("num_filters", 128, "Filters per layer (128 or 192 usual).")
flags.DEFINE_integer("patch_size", 256, "Side of random training crops, px.")
flags.DEFINE_integer("validation_patch_size", 256, "Side of validation crops, px.")
flags.DEFINE_integer("batch_size", 8, "Crops per step.")
flags.DEFINE_integer("steps", 100_000, "Total optimizer steps.")
flags.DEFINE_float("learning_rate", 1e-4, "Initial Adam learning rate.")
flags.DEFINE_float("lr_decay_at", 0.9,
                   "Fraction of --steps after which the learning rate drops.")
flags.DEFINE_float("lr_decay_factor", 10.0, "Divisor of the learning rate drop.")
flags.DEFINE_float("prior_lr_factor", 10.0,
                   "The prior's learning rate is this times --learning_rate.")
flags.DEFINE_integer("checkpoint_every", 500,
                     "Steps between checkpoints (= Keras epoch length).")
flags.DEFINE_integer("validate_every", 2, "Epochs between validation passes.")
flags.DEFINE_enum("quantization", "noise", list(configs.QUANTIZATIONS),
                  "Training's stand-in for rounding: noise (the paper's:"
                  " uniform noise for rate and reconstruction) or mixed (noise"
                  " for the rate, rounding with a straight-through gradient for"
                  " the reconstruction).")
flags.DEFINE_enum("conv_dtype", "float32", list(configs.CONV_DTYPES),
                  "What training's convolutions compute in: bfloat16 is about"
                  " twice as fast a step on CPUs with AMX or AVX512-BF16"
                  " (exports compute in float32 either way).")
flags.DEFINE_string("init_from", None,
                    "Exported model or training dir to warm-start weights from"
                    " (a model with fewer filters is widened).")
flags.DEFINE_float("init_latent_scale", 1.0,
                   "Multiply the --init_from model's latents by this before"
                   " training (below 1: fewer bits; 0.6-0.7 to start half its"
                   " lmbda, see e2e_compress/rescale.py).")
flags.DEFINE_string("train_dir", None,
                    "Directory of checkpoints, TensorBoard logs and the record.")
flags.DEFINE_string("export_to", None,
                    "Export the trained model here. An existing directory is"
                    " replaced only if this run exported it; else the run"
                    " refuses to start.")
flags.DEFINE_string("from_model", None,
                    "export only: re-export this exported model (e.g. with"
                    " --kernel_dtype=float16) instead of a --train_dir's run.")
flags.DEFINE_enum("kernel_dtype", "float32", ["float32", "float16"],
                  "How the export stores its convolution kernels (computation"
                  " is float32 either way): float16 halves the model for"
                  " ~0.001 dB.")
flags.DEFINE_string("data_note", None,
                    "Text saying which images (licence subset) trained the model.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_integer("image_every", 1000,
                     "Steps between TensorBoard images of a fixed crop and its"
                     " reconstruction (0: none).")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"],
                  "tf.distribute strategy: one device; all local GPUs; or a"
                  " cluster described by TF_CONFIG. --batch_size is per replica.")
flags.DEFINE_integer("logical_cpus", 0,
                     "Split the CPU into this many logical devices (to try"
                     " --strategy=mirrored without GPUs).")


def main(argv):
    from e2e_compress import train

    if len(argv) > 1:
        raise ValueError(f"train takes no positional arguments, got {argv[1:]}")
    for name in ("train_glob", "train_dir"):
        if not getattr(FLAGS, name):
            raise ValueError(f"--{name} is required")
    model_config = configs.ModelConfig(
        num_filters=FLAGS.num_filters, lmbda=FLAGS.lmbda,
        distortion=FLAGS.distortion, quantization=FLAGS.quantization)
    train_config = configs.TrainConfig(
        train_glob=FLAGS.train_glob,
        validation_glob=FLAGS.validation_glob or None,
        patch_size=FLAGS.patch_size,
        validation_patch_size=FLAGS.validation_patch_size,
        batch_size=FLAGS.batch_size, steps=FLAGS.steps,
        learning_rate=FLAGS.learning_rate, lr_decay_at=FLAGS.lr_decay_at,
        lr_decay_factor=FLAGS.lr_decay_factor,
        checkpoint_every=FLAGS.checkpoint_every,
        prior_lr_factor=FLAGS.prior_lr_factor,
        validate_every=FLAGS.validate_every,
        init_from=FLAGS.init_from or None,
        init_latent_scale=FLAGS.init_latent_scale,
        seed=FLAGS.seed, strategy=FLAGS.strategy, image_every=FLAGS.image_every,
        conv_dtype=FLAGS.conv_dtype)
    train.train(model_config, train_config, FLAGS.train_dir,
                export_to=FLAGS.export_to,
                data_note=FLAGS.data_note, logical_cpus=FLAGS.logical_cpus,
                kernel_dtype=FLAGS.kernel_dtype)
    return 0


def export_main(argv):
    """`e2e-compress export --train_dir=DIR --export_to=PATH
    [--kernel_dtype=float16]`: the latest checkpoint as a SavedModel, also
    while that run is still training. `--from_model=MODEL` instead of
    `--train_dir` re-exports an exported model with other kernel storage,
    at the current range coder precision (`rate.RANGE_CODER_PRECISION`)."""
    from e2e_compress import export, train

    if len(argv) > 1:
        raise ValueError(f"export takes no positional arguments, got {argv[1:]}")
    if not FLAGS.export_to:
        raise ValueError("--export_to is required")
    if bool(FLAGS.train_dir) == bool(FLAGS.from_model):
        raise ValueError("export needs one of --train_dir (a training run) and"
                         " --from_model (an exported model)")
    target = FLAGS.export_to
    if FLAGS.from_model:
        info = export.convert_model(FLAGS.from_model, target,
                                    FLAGS.kernel_dtype, overwrite=FLAGS.overwrite)
    else:
        info = train.export_latest(FLAGS.train_dir, target,
                                   overwrite=FLAGS.overwrite,
                                   kernel_dtype=FLAGS.kernel_dtype)
    print(f"exported {FLAGS.export_to}: step {info.get('steps')}, model id"
          f" {info['model_id']}, {info['kernel_dtype']} kernels")
    return 0
