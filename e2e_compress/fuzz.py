"""Seeded fuzzing of the decoder with mutated `.e2ec` files.

Each case takes one of a few valid files, applies one random mutation (bit
flips, a changed byte, a cut, an insertion, a splice, a new model id, an
empty or foreign file) and decodes the result. Half of the cases are also
*resealed*: the header's payload length and the checksum are rewritten to
match, so the damage gets past the container checks into the range decoder
and the transforms. Case `i` of seed `s` is the same mutation on every
machine, so any finding can be replayed alone.

Outcomes of a case:
- `refused`: a clean error (`container.FormatError`, `zoo.ModelNotFoundError`),
  which the CLI prints as one line with exit status 1;
- `decoded`: a uint8 image of the size the header states (possible only when
  the mutation left the file valid, e.g. a resealed payload);
- `crash`: any other exception, an image of the wrong size or type, or the
  decoding process dying;
- `hang`: no outcome within the time limit.

`decoder_timeouts` counts the refusals that were the codec's range-decoder
deadline (`codec.DecodeTimeout`): tfc's decoder can spin forever on a
damaged payload; each is listed in the findings.

The cases run in a child process, so a crash or a hang of native code is
observed, counted, and the run goes on with a fresh child.

Decoding work grows with the image size a header states, and a resealed
header can state up to the decoder's limit (200 megapixels: minutes of
work, not a hang). The fuzzer therefore decodes with `max_pixels` (default 4
megapixels, far above its small originals), as a service decoding untrusted
files would: larger claims are refused by that check.
"""

import multiprocessing
import os
import random
import struct
import time
import zlib

from e2e_compress import container

MUTATIONS = ("flip", "byte", "cut", "insert", "splice", "model_id", "empty",
             "foreign")


def mutate(data: bytes, rng: random.Random, kind: str | None = None) -> bytes:
    """One random mutation of `data` (kind chosen by `rng` unless given)."""
    data = bytearray(data)
    kind = kind or rng.choice(MUTATIONS)
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(data) * 8)
            data[i // 8] ^= 1 << (i % 8)
    elif kind == "byte":
        i = rng.randrange(len(data))
        data[i] = (data[i] + rng.randint(1, 255)) % 256
    elif kind == "cut":
        data = data[:rng.randrange(len(data))]
    elif kind == "insert":
        i = rng.randrange(len(data) + 1)
        data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 9)))
    elif kind == "splice":
        i, j = sorted(rng.randrange(len(data)) for _ in range(2))
        data = data[:i] + data[j:] + data[i:j]
    elif kind == "model_id":
        data[5:13] = bytes(rng.randrange(256) for _ in range(8))
    elif kind == "empty":
        data = bytearray()
    elif kind == "foreign":
        head = rng.choice([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a",
                           container.MAGIC, b""])
        data = bytearray(head + bytes(
            rng.randrange(256) for _ in range(rng.randrange(200))))
    else:
        raise ValueError(f"unknown mutation {kind!r}, expected one of {MUTATIONS}")
    return bytes(data)


def reseal(data: bytes) -> bytes:
    """Makes (damaged) container bytes pass the container checks: the last 4
    bytes are taken for the checksum and recomputed, and the header's payload
    length is set to what lies between. Data shorter than a container's
    fixed overhead is returned as is."""
    if len(data) < container.OVERHEAD_BYTES:
        return data
    body = bytearray(data[:-4])
    struct.pack_into(">I", body, 21, len(body) - container.HEADER_BYTES)
    return bytes(body) + struct.pack(">I", zlib.crc32(bytes(body)))


def make_case(originals: list[bytes], seed: int, index: int):
    """(kind, resealed, bytes) of case `index` of a seeded run."""
    rng = random.Random(f"{seed}-{index}")
    original = rng.choice(originals)
    kind = rng.choice(MUTATIONS)
    data = mutate(original, rng, kind)
    resealed = rng.random() < 0.5
    if resealed:
        data = reseal(data)
    return kind, resealed, data


def classify(data: bytes, decode) -> str:
    """Outcome of decoding `data` with `decode(bytes) -> image`."""
    import numpy as np

    from e2e_compress import zoo

    try:
        image = decode(data)
    except (container.FormatError, zoo.ModelNotFoundError):
        return "refused"
    except Exception:  # noqa: BLE001 - anything else is what we look for
        return "crash"
    packed = container.unpack(data)
    ok = (isinstance(image, np.ndarray) and image.dtype == np.uint8
          and image.shape == (packed.height, packed.width, 3))
    return "decoded" if ok else "crash"


def _worker(conn, model_path, originals, seed, start, stop, max_pixels):
    from e2e_compress import codec

    model = codec.load_model(model_path)
    timeouts = []

    def decode(data):
        try:
            return codec.decompress(data, model, max_pixels=max_pixels)
        except codec.DecodeTimeout:
            timeouts.append(True)
            raise

    for i in range(start, stop):
        conn.send(("start", i))
        _, _, data = make_case(originals, seed, i)
        conn.send(("done", i, classify(data, decode), bool(timeouts)))
        if timeouts:  # a decoder thread is stuck: make way for a fresh child
            conn.send(("restart",))
            conn.close()
            os._exit(0)
    conn.send(("finished",))


MAX_PIXELS = 4_000_000


def run(model_path: str, originals: list[bytes], count: int, seed: int = 0,
        timeout: float = 30.0, progress=None, max_pixels: int = MAX_PIXELS
        ) -> dict:
    """Runs `count` cases in child processes and counts the outcomes.

    Args:
      model_path: the SavedModel that made `originals`.
      originals: valid `.e2ec` files to mutate.
      count: number of cases; seed: the run's seed.
      timeout: seconds a single case may take before it counts as a hang
        (the first case also loads the model, and gets 10x).
      progress: optional callable, called with the number of cases done.
      max_pixels: the decoder's bound on the stated image size.

    Returns:
      A dict with `tried`, the count of each outcome, the findings (case
      index, mutation, resealed, outcome) of every crash and hang, the
      number of cases per mutation, and seconds spent.
    """
    ctx = multiprocessing.get_context("spawn")
    counts = dict(refused=0, decoded=0, crash=0, hang=0, decoder_timeouts=0)
    findings, started, next_case = [], time.time(), 0
    while next_case < count:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(
            child, model_path, originals, seed, next_case, count, max_pixels),
            daemon=True)
        proc.start()
        child.close()
        first, current = True, None
        while True:
            limit = timeout * (10 if first else 1)
            if not parent.poll(limit):
                outcome = "hang" if proc.is_alive() else "crash"
                break
            try:
                message = parent.recv()
            except EOFError:  # the child died without a word
                outcome = "crash"
                break
            if message[0] == "start":
                current = message[1]
            elif message[0] == "done":
                first = False
                counts[message[2]] += 1
                if message[3]:
                    counts["decoder_timeouts"] += 1
                    findings.append(_finding(originals, seed, message[1],
                                             "refused (decoder timeout)"))
                if message[2] in ("crash", "hang"):
                    findings.append(_finding(originals, seed, message[1], message[2]))
                next_case = message[1] + 1
                if progress:
                    progress(next_case)
            else:  # finished, or restart after a decoder timeout
                outcome = None
                break
        proc.kill()
        proc.join()
        if outcome is not None:
            failed = current if current is not None else next_case
            counts[outcome] += 1
            findings.append(_finding(originals, seed, failed, outcome))
            next_case = failed + 1
            if progress:
                progress(next_case)
    kinds = {}
    for i in range(count):
        kind, _, _ = make_case(originals, seed, i)
        kinds[kind] = kinds.get(kind, 0) + 1
    return dict(tried=count, seed=seed, **counts, findings=findings,
                mutations=kinds, max_pixels=max_pixels,
                seconds=round(time.time() - started, 1))


def _finding(originals, seed, index, outcome):
    kind, resealed, _ = make_case(originals, seed, index)
    return dict(case=index, mutation=kind, resealed=resealed, outcome=outcome)
