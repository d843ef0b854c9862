"""Training: `train(model_config, train_config, train_dir)`.

Keras `fit` runs the model's own `train_step`. One Keras epoch is
`checkpoint_every` steps; at the end of each, the model and optimizer state are
saved in `train_dir/checkpoints` (two kept). Starting again with the same
arguments resumes from the newest checkpoint, so a run killed at any moment
loses at most one epoch. `train_dir/record.json` accumulates steps, wall and
CPU time across resumes; `train_dir/logs` holds TensorBoard scalars.
Under a tf.distribute strategy (`TrainConfig.strategy`, see distribute.py)
the chief writes all of these.
"""

import json
import math
import os
import shutil
import time

import numpy as np
import tensorflow as tf
from absl import logging

from e2e_compress import data, distribute, export, metrics, rescale
from e2e_compress.configs import ModelConfig, TrainConfig
from e2e_compress.model import BLS2017Model

RECORD = "record.json"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def learning_rate_schedule(config: TrainConfig, factor: float = 1.0):
    """Constant `factor * learning_rate`, divided by `lr_decay_factor` after
    `lr_decay_at * steps` steps (a step function of the optimizer's step).

    Always a schedule, even without a decay (`lr_decay_at=1`): the optimizer
    then checkpoints the same variables either way, so a run may be resumed
    with another schedule (more steps, a later decay)."""
    rate = factor * config.learning_rate
    boundary = config.decay_step
    low = rate if boundary >= config.steps else rate / config.lr_decay_factor
    return tf.keras.optimizers.schedules.PiecewiseConstantDecay(
        [boundary], [rate, low])


class _CheckpointAndRecord(tf.keras.callbacks.Callback):
    """Saves a checkpoint and the training record at every epoch end."""

    def __init__(self, manager, train_dir, record, chief=True):
        super().__init__()
        self.chief = chief
        self.manager = manager
        self.train_dir = train_dir
        self.record = record
        self._wall0 = time.time()
        self._cpu0 = time.process_time()
        self._wall_before = record.get("wall_seconds", 0.0)
        self._cpu_before = record.get("cpu_seconds", 0.0)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        step = int(self.model.optimizer.iterations.numpy())
        finite = all(np.all(np.isfinite(v.numpy())) for v in self.model.weights)
        if not finite or not math.isfinite(logs.get("loss", 0.0)):
            self.model.stop_training = True
            raise TrainingDiverged(
                f"loss or weights became non-finite by step {step}; the last good"
                f" checkpoint ({self.manager.latest_checkpoint}) is kept: restart"
                " with a lower --learning_rate")
        self.manager.save(checkpoint_number=step)
        if not self.chief:
            return
        if self.record.get("segments"):
            # Where this segment has got to; a killed run keeps it.
            self.record["segments"][-1]["end_step"] = step
        self.record.update(
            steps=step,
            wall_seconds=self._wall_before + time.time() - self._wall0,
            cpu_seconds=self._cpu_before + time.process_time() - self._cpu0,
            last_metrics={k: float(v) for k, v in logs.items()},
        )
        write_record(self.train_dir, self.record)


class _Reconstructions(tf.keras.callbacks.Callback):
    """TensorBoard images: a fixed crop and, every `every` steps, its
    reconstruction (latents rounded, as when coding), with its bpp and PSNR."""

    def __init__(self, log_dir, crop, every):
        super().__init__()
        self.crop = crop
        self.every = every
        self.writer = tf.summary.create_file_writer(log_dir)
        self._original_written = False

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.every:
            return
        _, bpp, mse, _ = self.model(self.crop, training=False)
        x_hat = self.model.synthesis_transform(tf.round(
            self.model.analysis_transform(self.crop)))
        to_uint8 = lambda x: tf.saturate_cast(tf.round(x), tf.uint8)  # noqa: E731
        # Keras' TensorBoard callback sets a global record_if(update_freq).
        with self.writer.as_default(step=step), tf.summary.record_if(True):
            if not self._original_written:
                tf.summary.image("crop/original", to_uint8(self.crop))
                self._original_written = True
            tf.summary.image("crop/reconstruction", to_uint8(x_hat))
            tf.summary.scalar("crop/bpp", bpp)
            tf.summary.scalar("crop/psnr", 10.0 * tf.math.log(
                255.0 ** 2 / mse) / tf.math.log(10.0))
        self.writer.flush()


def write_record(train_dir: str, record: dict) -> None:
    tmp = os.path.join(train_dir, RECORD + ".tmp")
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2, sort_keys=True)
    os.replace(tmp, os.path.join(train_dir, RECORD))


def read_record(train_dir: str) -> dict:
    path = os.path.join(train_dir, RECORD)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _parent_summary(path: str) -> dict:
    """What a warm-start parent was: its path, steps and compute."""
    summary = {"path": path}
    if os.path.isdir(os.path.join(path, "variables")):
        info = export.read_model_info(path)
        keys = ("model_id", "lmbda", "num_filters", "steps", "cpu_hours",
                "wall_hours", "init_from")
        summary.update({k: info.get(k) for k in keys})
    else:
        parent = read_record(path)
        summary.update(
            steps=parent.get("steps"),
            lmbda=parent.get("config", {}).get("model", {}).get("lmbda"),
            num_filters=parent.get("config", {}).get("model", {}).get("num_filters"),
            cpu_hours=round(parent.get("cpu_seconds", 0.0) / 3600, 3),
            wall_hours=round(parent.get("wall_seconds", 0.0) / 3600, 3),
            init_from=parent.get("init_from"))
    return summary


def _restore_for_resume(checkpoint, path: str, train_config: TrainConfig):
    """Restores weights and optimizer state, refusing a changed optimizer set.

    The learning-rate schedule may change between resumes (e.g. a later
    decay, more steps): it is not state. What must match is whether the
    prior has its own optimizer (`prior_lr_factor != 1`), since its Adam
    moments would otherwise be silently dropped or left at zero.
    """
    names = [name for name, _ in tf.train.list_variables(path)]
    saved_prior_optimizer = any(n.startswith("model/prior_optimizer/") for n in names)
    if saved_prior_optimizer != (train_config.prior_lr_factor != 1.0):
        raise ValueError(
            f"{path} was trained with"
            f" {'a separate' if saved_prior_optimizer else 'one shared'} optimizer"
            f" for the prior, but --prior_lr_factor={train_config.prior_lr_factor:g}"
            f" asks for {'one shared' if saved_prior_optimizer else 'a separate'}"
            f" one: resume with the run's --prior_lr_factor, or use another"
            f" --train_dir")
    try:
        checkpoint.restore(path).assert_existing_objects_matched()
    except AssertionError as e:
        raise ValueError(f"{path} does not match this run's model or optimizer:"
                         f" {str(e)[:300]}") from None


def train(model_config: ModelConfig, train_config: TrainConfig, train_dir: str,
          export_to: str | None = None, overwrite_export: bool = False,
          data_note: str | None = None, verbose: int = 2,
          logical_cpus: int = 0, kernel_dtype: str = "float32") -> BLS2017Model:
    """Trains (or resumes training of) one model, optionally exporting it.

    Args:
      model_config: architecture and trade-off.
      train_config: data, optimisation and checkpointing.
      train_dir: directory of checkpoints, logs and the training record. If it
        holds a checkpoint of a run with the same model config, training
        resumes from it; `train_config.init_from` is ignored then.
      export_to: if given, the trained model is exported there as a SavedModel.
        An existing directory there is replaced only if this run exported
        it (a resumed or re-run command), or if `overwrite_export`; else the
        call fails before training.
      overwrite_export: replace an existing export directory in any case.
      data_note: free text stored in the model's metadata, saying which
        images (which licence subset) trained it.
      verbose: Keras `fit` verbosity.
      logical_cpus: split the CPU into this many logical devices first (a
        testing aid for `strategy="mirrored"` without GPUs).
      kernel_dtype: how the export stores its kernels, "float32" or
        "float16" (see `export.export_model`).

    Returns:
      The trained `BLS2017Model`.

    Raises:
      data.NoImagesError: the training glob matched no usable image.
      TrainingDiverged: the loss became non-finite.
      ValueError: `train_dir` holds a run of a different model config, or
        an MS-SSIM model is given patches under 161 px.
      FileExistsError: `export_to` exists and is not this run's export.
    """
    if model_config.distortion == "ms-ssim":
        side = min(train_config.patch_size, train_config.validation_patch_size)
        if side < metrics.MS_SSIM_MIN_SIDE:
            raise ValueError(
                f"MS-SSIM training needs patches of at least"
                f" {metrics.MS_SSIM_MIN_SIDE} px (5 scales of an 11-tap window),"
                f" got patch_size={train_config.patch_size},"
                f" validation_patch_size={train_config.validation_patch_size};"
                f" use 176 or more")
    os.makedirs(train_dir, exist_ok=True)
    record = read_record(train_dir)
    config_dict = dict(model=model_config.__dict__, train=train_config.__dict__)
    if record and record.get("config", {}).get("model") != model_config.__dict__:
        raise ValueError(
            f"{train_dir} holds a run of model config {record['config']['model']},"
            f" not {model_config.__dict__}: use another --train_dir")
    if export_to and not overwrite_export:
        _check_export_target(export_to, record, train_dir)
    paths, counts = data.list_images(train_config.train_glob, train_config.patch_size)
    logging.info("training images: %s", counts)

    strategy = distribute.make_strategy(train_config.strategy, logical_cpus)
    if (train_config.conv_dtype == "bfloat16"
            and not tf.config.list_logical_devices("GPU")
            and distribute.cpu_has_bfloat16_units() is False):
        logging.warning(
            "conv_dtype=bfloat16 on a CPU without bfloat16 units (its flags"
            " list none of %s): TensorFlow emulates bfloat16, which made a step"
            " 19x slower than float32 on a 2-core AVX2 EPYC (14 s against"
            " 0.73 s). Use conv_dtype=float32.",
            ", ".join(distribute.BFLOAT16_CPU_FLAGS))
    chief = distribute.is_chief(strategy)
    replicas = strategy.num_replicas_in_sync
    lr_factor = distribute.learning_rate_factor(strategy)
    with strategy.scope():
        tf.keras.utils.set_random_seed(train_config.seed)
        model = BLS2017Model(model_config, conv_dtype=train_config.conv_dtype)
        model.compile(optimizer=tf.keras.optimizers.Adam(
            learning_rate=learning_rate_schedule(train_config, lr_factor)))
        if train_config.prior_lr_factor != 1.0:
            model.prior_optimizer = tf.keras.optimizers.Adam(
                learning_rate=learning_rate_schedule(
                    train_config, lr_factor * train_config.prior_lr_factor))
            model.prior_optimizer.build(model.prior.trainable_variables)
        # Create the optimizer's slots now so a checkpoint restores them eagerly.
        model.optimizer.build(model.trainable_variables)
        checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)

    shared_dir = os.path.join(train_dir, "checkpoints")
    # Saving is collective: workers other than the chief save to scratch.
    own_dir = shared_dir if chief else os.path.join(
        train_dir, f".scratch-{distribute.worker_tag(strategy)}")
    manager = tf.train.CheckpointManager(checkpoint, own_dir, max_to_keep=2)
    latest = tf.train.latest_checkpoint(shared_dir)
    if latest:
        _restore_for_resume(checkpoint, latest, train_config)
        logging.info("resumed from %s", latest)
    elif train_config.init_from:
        export.restore_weights(model, train_config.init_from)
        logging.info("warm-started from %s", train_config.init_from)
        record["init_from"] = _parent_summary(train_config.init_from)
        if train_config.init_latent_scale != 1.0:
            rescale.rescale_latents(model, train_config.init_latent_scale)
            logging.info("latents scaled by %g", train_config.init_latent_scale)
            record["init_from"]["latent_scale"] = train_config.init_latent_scale

    step = int(model.optimizer.iterations.numpy())
    epoch_steps = train_config.checkpoint_every
    initial_epoch = step // epoch_steps
    epochs = math.ceil(train_config.steps / epoch_steps)
    record.setdefault("segments", [])
    record.update(config=config_dict, data=counts, data_note=data_note)
    if step < train_config.steps:
        if record["segments"]:
            # The run before this one ended at the checkpoint it resumes
            # from: steps after it were lost. Records written before
            # `planned_end_step` existed kept the plan in `end_step`.
            last = record["segments"][-1]
            last.setdefault("planned_end_step", last["end_step"])
            last["end_step"] = step
        # Each segment keeps its own schedule: a resume may change it.
        record["segments"].append(dict(
            start_step=step, end_step=step, planned_end_step=train_config.steps,
            started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            learning_rate=train_config.learning_rate,
            decay_at_step=train_config.decay_step,
            lr_decay_factor=train_config.lr_decay_factor,
            patch_size=train_config.patch_size,
            batch_size=train_config.batch_size,
            conv_dtype=train_config.conv_dtype))
        # Mix the start step into the data seed so a resumed run sees new crops.
        global_batch = train_config.batch_size * replicas
        train_ds = data.make_patch_dataset(
            paths, train_config.patch_size, global_batch,
            seed=train_config.seed + step, shuffle_buffer=train_config.shuffle_buffer)
        # Each worker keeps its own share of every global batch.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA)
        train_ds = train_ds.with_options(options)
        val_ds = None
        if train_config.validation_glob:
            val_paths, _ = data.list_images(train_config.validation_glob, 16)
            val_ds = data.make_validation_dataset(
                val_paths, train_config.validation_patch_size,
                global_batch).with_options(options)
        logging.info("strategy %s: %d replica(s), global batch %d, learning rate"
                     " x%.3g", train_config.strategy, replicas, global_batch,
                     lr_factor)
        callbacks = [
            tf.keras.callbacks.TerminateOnNaN(),
            _CheckpointAndRecord(manager, train_dir, record, chief=chief),
        ]
        if chief:
            callbacks.append(tf.keras.callbacks.TensorBoard(
                log_dir=os.path.join(train_dir, "logs"), update_freq=100,
                write_graph=False, profile_batch=0))
            if train_config.image_every:
                crop_path = val_paths[0] if val_ds is not None else paths[0]
                crop = data.centre_crop(crop_path, train_config.validation_patch_size)
                callbacks.append(_Reconstructions(
                    os.path.join(train_dir, "logs", "images"), crop,
                    train_config.image_every))
        model.fit(train_ds, epochs=epochs, initial_epoch=initial_epoch,
                  steps_per_epoch=epoch_steps, validation_data=val_ds,
                  validation_freq=train_config.validate_every,
                  callbacks=callbacks, verbose=verbose)
    else:
        logging.info("already trained for %d >= %d steps", step, train_config.steps)
    if not chief:
        shutil.rmtree(own_dir, ignore_errors=True)
        return model

    if export_to:
        record = read_record(train_dir) or record
        info = _export_info(record, train_config, counts, data_note,
                            int(model.optimizer.iterations.numpy()))
        own = _is_own_export(export_to, record)
        info = export.export_model(model, export_to, info,
                                   overwrite=overwrite_export or own,
                                   kernel_dtype=kernel_dtype)
        logging.info("exported %s (model id %s)", export_to, info["model_id"])
        if not own:
            record.setdefault("exported_to", []).append(os.path.abspath(export_to))
            write_record(train_dir, record)
    return model


def _check_export_target(export_to: str, record: dict, train_dir: str) -> None:
    """Refuses, before any training, an export path that holds something
    this run did not write there (a shipped model, another run's export)."""
    if not os.path.exists(export_to) or _is_own_export(export_to, record):
        return
    raise FileExistsError(
        f"{export_to} exists and was not exported by the run in {train_dir};"
        f" nothing was trained. Choose another export path, or remove it")


def _is_own_export(export_to: str, record: dict) -> bool:
    """Whether this run (its `record.json`) has exported to `export_to`."""
    return os.path.abspath(export_to) in record.get("exported_to", [])


def _export_info(record: dict, train_config: TrainConfig, counts: dict,
                 data_note: str | None, steps: int) -> dict:
    """The training facts an exported model carries in its metadata."""
    return dict(
        steps=steps,
        wall_hours=round(record.get("wall_seconds", 0.0) / 3600, 3),
        cpu_hours=round(record.get("cpu_seconds", 0.0) / 3600, 3),
        patch_size=train_config.patch_size,
        batch_size=train_config.batch_size,
        learning_rate=train_config.learning_rate,
        prior_lr_factor=train_config.prior_lr_factor,
        lr_decay_at=train_config.lr_decay_at,
        lr_decay_factor=train_config.lr_decay_factor,
        init_from=record.get("init_from"),
        quantization=record.get("config", {}).get("model", {}).get(
            "quantization", "noise"),
        segments=record.get("segments", []),
        training_data=dict(glob=train_config.train_glob, **counts, note=data_note),
    )


def export_latest(train_dir: str, export_to: str, overwrite: bool = False,
                  kernel_dtype: str = "float32") -> dict:
    """Exports the latest checkpoint of a training directory.

    Safe while that run goes on: it only reads the checkpoint and record.
    `kernel_dtype` as for `export.export_model`.

    Returns:
      The exported model's metadata (see `export.export_model`).

    Raises:
      FileNotFoundError: `train_dir` has no training record or checkpoint.
    """
    record = read_record(train_dir)
    latest = tf.train.latest_checkpoint(os.path.join(train_dir, "checkpoints"))
    if not record or latest is None:
        raise FileNotFoundError(
            f"{train_dir} is not a training directory with a checkpoint")
    model = BLS2017Model(ModelConfig(**record["config"]["model"]))
    train_config = TrainConfig(**record["config"]["train"])
    export.restore_weights(model, train_dir)
    # Checkpoints are numbered by the optimizer step at which they were saved.
    steps = int(latest.rsplit("-", 1)[1])
    info = _export_info(record, train_config, record.get("data", {}),
                        record.get("data_note"), steps)
    return export.export_model(model, export_to, info, overwrite=overwrite,
                               kernel_dtype=kernel_dtype)
