"""A standalone TF program using an exported e2e-compress model.

It imports only TensorFlow and tensorflow_compression (plus the standard
library): no e2e_compress. It compresses every PNG/JPEG in a folder to `.e2ec`
files (the container documented in the README, so `e2e-compress decompress`
reads them too), then decompresses them back to PNG, through the model's
named signatures.

    python notebooks/tf_app_example.py checkpoints/bls2017-mse-q4 IN_DIR OUT_DIR
"""

import json
import os
import struct
import sys
import zlib

import tensorflow as tf
import tensorflow_compression  # noqa: F401 - registers the range coding ops


def pack(model_id: str, height: int, width: int, payload: bytes) -> bytes:
    """The .e2ec container: magic, version 1, model id, H, W, length, payload,
    CRC-32 of everything before it; integers big-endian."""
    body = struct.pack(">4sB8sIII", b"E2EC", 1, bytes.fromhex(model_id),
                       height, width, len(payload)) + payload
    return body + struct.pack(">I", zlib.crc32(body))


def unpack(data: bytes):
    magic, version, model_id, height, width, length = struct.unpack_from(
        ">4sB8sIII", data)
    if magic != b"E2EC" or version != 1 or len(data) != 29 + length:
        raise ValueError("not an intact .e2ec version 1 file")
    if struct.unpack_from(">I", data, 25 + length)[0] != zlib.crc32(data[:25 + length]):
        raise ValueError("checksum mismatch")
    return model_id.hex(), height, width, data[25:25 + length]


def main(model_dir: str, in_dir: str, out_dir: str) -> None:
    model = tf.saved_model.load(model_dir)
    compress = model.signatures["compress"]
    decompress = model.signatures["decompress"]
    with open(os.path.join(model_dir, "assets", "model_info.json")) as f:
        model_id = json.load(f)["model_id"]
    os.makedirs(out_dir, exist_ok=True)
    for name in sorted(os.listdir(in_dir)):
        if not name.lower().endswith((".png", ".jpg", ".jpeg")):
            continue
        image = tf.io.decode_image(tf.io.read_file(os.path.join(in_dir, name)),
                                   channels=3, expand_animations=False)
        out = compress(image=image)
        height, width = (int(v) for v in out["image_shape"])
        payload = out["strings"].numpy()[0]
        stem = os.path.splitext(name)[0]
        coded = os.path.join(out_dir, stem + ".e2ec")
        with open(coded, "wb") as f:
            f.write(pack(model_id, height, width, payload))

        with open(coded, "rb") as f:
            file_id, height, width, payload = unpack(f.read())
        if file_id != model_id:
            raise ValueError(f"{coded} was made by model {file_id}")
        latent_shape = [-(-height // 16), -(-width // 16)]
        decoded = decompress(strings=tf.constant([payload]),
                             image_shape=tf.constant([height, width]),
                             latent_shape=tf.constant(latent_shape))["image"]
        tf.io.write_file(os.path.join(out_dir, stem + ".png"),
                         tf.io.encode_png(decoded))
        mse = tf.reduce_mean(tf.square(tf.cast(image, tf.float32)
                                       - tf.cast(decoded, tf.float32)))
        bpp = 8.0 * os.path.getsize(coded) / (height * width)
        psnr = 10.0 * tf.math.log(255.0 ** 2 / mse) / tf.math.log(10.0)
        print(f"{name}: {width}x{height}, {os.path.getsize(coded)} bytes,"
              f" {bpp:.4f} bpp, PSNR {float(psnr):.2f} dB")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: tf_app_example.py MODEL_DIR IN_DIR OUT_DIR")
    main(*sys.argv[1:])
