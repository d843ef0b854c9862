"""Frozen configurations for the model and for training.

Every CLI flag of `e2e-compress train` has the spelling of the field it fills.
`TINY` holds the sizes the tests use, so they live in one place.
"""

import dataclasses
import math


DISTORTIONS = ("mse", "ms-ssim")
QUANTIZATIONS = ("noise", "mixed")
# What training's convolutions compute in (see layers.py); exports are float32.
CONV_DTYPES = ("float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """What defines a model's architecture and trade-off.

    Attributes:
      num_filters: channels of every hidden layer and of the latent (128 in the
        paper for low rates, 192 for high rates).
      lmbda: rate-distortion trade-off. The loss is `bpp + lmbda * D`. For
        `distortion="mse"`, D is the mean squared error on the 0-255 scale, so
        lmbda has units of bits per pixel per squared 8-bit level. For
        `distortion="ms-ssim"`, D is `1 - MS-SSIM` (unitless, in [0, 1]).
      distortion: "mse" or "ms-ssim".
      quantization: how training stands in for rounding. "noise" (the
        paper's): the rate and the reconstruction both see the latents plus
        uniform noise in [-0.5, 0.5). "mixed": the rate sees the noisy
        latents, the synthesis transform the rounded ones, with the
        identity as rounding's gradient (straight-through), so the
        distortion trained is the one the codec delivers. Inference always
        rounds.
    """

    num_filters: int = 128
    lmbda: float = 0.01
    distortion: str = "mse"
    quantization: str = "noise"

    def __post_init__(self):
        if self.num_filters < 1:
            raise ValueError(f"num_filters must be >= 1, got {self.num_filters}")
        if not self.lmbda > 0:
            raise ValueError(f"lmbda must be > 0, got {self.lmbda}")
        if self.distortion not in DISTORTIONS:
            raise ValueError(
                f"distortion must be one of {DISTORTIONS}, got {self.distortion!r}"
            )
        if self.quantization not in QUANTIZATIONS:
            raise ValueError(f"quantization must be one of {QUANTIZATIONS},"
                             f" got {self.quantization!r}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How one model is trained.

    Attributes:
      train_glob: glob of training images (PNG or JPEG, any size).
      validation_glob: optional glob of validation images; a centre crop of
        `validation_patch_size` of each is used.
      patch_size: side of the random square crops, in pixels.
      batch_size: crops per step.
      steps: total optimizer steps of the run (resuming counts from the last
        checkpoint, not from zero).
      learning_rate: initial Adam learning rate.
      lr_decay_at: fraction of `steps` after which the learning rate is divided
        by `lr_decay_factor` (once); 1.0 keeps it constant.
      lr_decay_factor: divisor applied at `lr_decay_at`.
      checkpoint_every: steps between resumable checkpoints. This is also the
        Keras epoch length: a checkpoint is written at the end of each epoch,
        so a killed run loses at most this many steps. `steps` must be a
        multiple of it (Keras runs whole epochs).
      validate_every: epochs between validation passes.
      prior_lr_factor: the prior's parameters get their own Adam optimizer
        with `learning_rate * prior_lr_factor`. The prior starts very wide
        (tfc's init_scale 10) and with Adam moves by about the learning rate
        per step, so at a shared rate the bits fall only ~0.04 bpp per 100
        steps early in training; 1.0 means one shared optimizer.
      init_from: optional path of an exported model or training directory to
        warm-start the weights from (for example a neighbouring lmbda). An
        exported model with fewer filters is widened, computing the same
        function at the start (see `widen.py`).
      init_latent_scale: factor on the warm-started model's latents (see
        `rescale.py`): below 1 it moves the model down its rate-distortion
        curve before the first step, to start a lower lmbda near its rate
        (0.6-0.7 for one step of the zoo's lmbda ladder, which halves lmbda).
        Only with `init_from`; 1.0 leaves the weights as they are.
      seed: seed of weights initialisation and data order.
      shuffle_buffer: crops held in the shuffle buffer.
      image_every: steps between TensorBoard images of a fixed crop (the
        first validation image, else the first training image) and its
        reconstruction; 0 turns them off.
      strategy: `default`, `mirrored` or `multi_worker` (see distribute.py);
        `batch_size` is then per replica and the learning rate is scaled by
        sqrt(replicas).
      conv_dtype: what the transforms' convolutions compute in: "float32",
        or "bfloat16" (polyphase convolutions on oneDNN's bfloat16 kernels,
        about twice as fast a step on CPUs with AMX or AVX512-BF16; see
        layers.py). Not part of the model: a run may be resumed with the
        other, and exported models compute in float32.
    """

    train_glob: str
    validation_glob: str | None = None
    patch_size: int = 256
    validation_patch_size: int = 256
    batch_size: int = 8
    steps: int = 100_000
    learning_rate: float = 1e-4
    lr_decay_at: float = 0.9
    lr_decay_factor: float = 10.0
    checkpoint_every: int = 500
    validate_every: int = 2
    prior_lr_factor: float = 10.0
    init_from: str | None = None
    init_latent_scale: float = 1.0
    seed: int = 0
    shuffle_buffer: int = 64
    image_every: int = 1000
    strategy: str = "default"
    conv_dtype: str = "float32"

    def __post_init__(self):
        for name in ("patch_size", "batch_size", "steps", "validate_every",
                     "checkpoint_every", "validation_patch_size"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.steps % self.checkpoint_every:
            # Keras runs whole epochs of `checkpoint_every` steps: 4800 steps
            # at 250 a checkpoint would train 5000.
            raise ValueError(
                f"steps must be a multiple of checkpoint_every (the epoch"
                f" length), got steps={self.steps} and checkpoint_every="
                f"{self.checkpoint_every}")
        if self.patch_size % 16:
            raise ValueError(
                f"patch_size must be a multiple of 16 (the model's total stride),"
                f" got {self.patch_size}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not (math.isfinite(self.init_latent_scale)
                and self.init_latent_scale > 0):
            raise ValueError(f"init_latent_scale must be a finite number > 0,"
                             f" got {self.init_latent_scale}")
        if self.init_latent_scale != 1.0 and not self.init_from:
            raise ValueError(
                f"init_latent_scale={self.init_latent_scale} rescales a"
                f" warm-started model's latents: it needs init_from")
        if self.conv_dtype not in CONV_DTYPES:
            raise ValueError(f"conv_dtype must be one of {CONV_DTYPES},"
                             f" got {self.conv_dtype!r}")
        if not 0 < self.lr_decay_at <= 1:
            raise ValueError(f"lr_decay_at must be in (0, 1], got {self.lr_decay_at}")

    @property
    def decay_step(self) -> int:
        """The optimizer step at which the learning rate drops (== `steps`
        when `lr_decay_at` is 1, i.e. no decay)."""
        return int(self.lr_decay_at * self.steps)


# Sizes for tests: small enough that a train step takes well under a second.
TINY_MODEL = ModelConfig(num_filters=8, lmbda=0.01)
TINY_PATCH = 32
