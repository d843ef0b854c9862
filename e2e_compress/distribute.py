"""Training on one device, several local devices, or a cluster (tf.distribute).

Strategies (`train --strategy=`):

- `default`: TensorFlow's default strategy, one device (a GPU if there is
  one, else the CPU).
- `mirrored`: `tf.distribute.MirroredStrategy`, one replica per local GPU (or
  per logical CPU device made with `logical_cpus`, for testing), gradients
  all-reduced every step.
- `multi_worker`: `tf.distribute.MultiWorkerMirroredStrategy`, the cluster
  and this process's role read from the `TF_CONFIG` environment variable;
  every worker runs the same command.

Batch and learning rate: `batch_size` is per replica, so the global batch is
`batch_size * replicas`, and the learning rate is multiplied by
`sqrt(replicas)` (the usual rule for Adam, whose steps do not grow with the
gradient's size, but whose gradient noise falls with the batch). Losses are
divided by the number of replicas before the gradients are summed across
them, so a gradient is the mean over the global batch.

Only the chief (the worker with task id 0, or the `chief` task) writes the
checkpoints, the record, TensorBoard logs and the export that everyone reads;
the other workers save into a scratch folder of their own, which is removed,
because saving a distributed checkpoint is a collective operation.
"""

import json
import math
import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker")

# CPU flags (Linux /proc/cpuinfo) of the units that run oneDNN's bfloat16
# convolutions natively. Without them TensorFlow emulates bfloat16, which
# made a training step 19x slower than float32 on a 2-core AVX2 EPYC
# (`results/training/bfloat16.json`).
BFLOAT16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def split_cpu(count: int) -> None:
    """Splits the CPU into `count` logical devices (before TF uses devices).

    A testing aid: `mirrored` then has `count` replicas on one CPU.
    """
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)


def cpu_has_bfloat16_units(cpuinfo: str = "/proc/cpuinfo") -> bool | None:
    """Whether the CPU lists one of `BFLOAT16_CPU_FLAGS`.

    Args:
      cpuinfo: path of a Linux `/proc/cpuinfo`-format file.

    Returns:
      True or False from the file's first `flags` line; None where that is
      unknown (no such file, or no `flags` line: not Linux x86).
    """
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.partition(":")[2].split())
                    return any(flag in flags for flag in BFLOAT16_CPU_FLAGS)
    except OSError:
        return None
    return None


def make_strategy(name: str, logical_cpus: int = 0) -> tf.distribute.Strategy:
    """The `tf.distribute.Strategy` called `name` (see the module docstring).

    Raises:
      ValueError: unknown name, or `multi_worker` without a usable TF_CONFIG.
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}, expected one of {STRATEGIES}")
    if logical_cpus > 1:
        split_cpu(logical_cpus)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy()
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(
            devices=cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
    config = os.environ.get("TF_CONFIG")
    if not config:
        raise ValueError("--strategy=multi_worker needs the TF_CONFIG environment"
                         " variable (cluster spec and this worker's task)")
    try:
        task = json.loads(config)["task"]
        task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"TF_CONFIG is not a valid cluster config: {config[:200]}")
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's shared files."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def worker_tag(strategy: tf.distribute.Strategy) -> str:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return "local"
    return f"{resolver.task_type}_{resolver.task_id}"


def learning_rate_factor(strategy: tf.distribute.Strategy) -> float:
    """sqrt(number of replicas): the learning rate's scale."""
    return math.sqrt(strategy.num_replicas_in_sync)
