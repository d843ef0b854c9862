"""The `.e2ec` file container: header, range-coded payload, checksum.

All integers are big-endian. Byte offsets:

| offset | size | field |
| --- | --- | --- |
| 0 | 4 | magic `E2EC` |
| 4 | 1 | format version, currently 1 |
| 5 | 8 | model id: the 16-hex-digit fingerprint of the model's weights |
| 13 | 4 | image height H, uint32, >= 1 |
| 17 | 4 | image width W, uint32, >= 1 |
| 21 | 4 | payload length N, uint32 |
| 25 | N | payload: the range-coded latents, as the model's `compress` made them |
| 25+N | 4 | CRC-32 (zlib) of bytes 0 .. 25+N-1 |

The fixed overhead is 29 bytes. The latent shape is not stored: it is
ceil(H/16) x ceil(W/16), by the model's design.
"""

import dataclasses
import struct
import zlib

MAGIC = b"E2EC"
VERSION = 1
_HEADER = struct.Struct(">4sB8sIII")
HEADER_BYTES = _HEADER.size  # 25
OVERHEAD_BYTES = HEADER_BYTES + 4
MAX_SIDE = 1 << 20


class FormatError(ValueError):
    """The bytes are not a valid, intact `.e2ec` file."""


@dataclasses.dataclass(frozen=True)
class Packed:
    """The decoded contents of a container.

    Attributes:
      model_id: 16 lowercase hex digits.
      height, width: the image size in pixels.
      payload: the range-coded latents.
    """

    model_id: str
    height: int
    width: int
    payload: bytes


def pack(packed: Packed) -> bytes:
    """Serialises a `Packed` to the container bytes."""
    try:
        model_id = bytes.fromhex(packed.model_id)
    except ValueError:
        model_id = b""
    if len(model_id) != 8:
        raise ValueError(f"model id must be 16 hex digits, got {packed.model_id!r}")
    for name in ("height", "width"):
        value = getattr(packed, name)
        if not 1 <= value <= MAX_SIDE:
            raise ValueError(f"{name} must be in [1, {MAX_SIDE}], got {value}")
    header = _HEADER.pack(MAGIC, VERSION, model_id, packed.height, packed.width,
                          len(packed.payload))
    body = header + packed.payload
    return body + struct.pack(">I", zlib.crc32(body))


def unpack(data: bytes) -> Packed:
    """Parses and checks container bytes.

    Raises:
      FormatError: wrong magic or version, truncated or extended, or the
        checksum does not match (a corrupted file).
    """
    if len(data) < OVERHEAD_BYTES:
        if not data:
            raise FormatError("empty file, expected an .e2ec container")
        if not data.startswith(MAGIC[:len(data)]):
            raise FormatError("not an .e2ec file (wrong magic bytes)")
        raise FormatError(
            f"truncated: {len(data)} bytes, an .e2ec file has at least"
            f" {OVERHEAD_BYTES}")
    magic, version, model_id, height, width, length = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise FormatError(f"not an .e2ec file (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise FormatError(
            f"format version {version} is not supported (this reader knows"
            f" {VERSION}); a newer e2e-compress may read it")
    expected = OVERHEAD_BYTES + length
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise FormatError(
            f"file {what}: {len(data)} bytes, the header says {expected}")
    (crc,) = struct.unpack_from(">I", data, expected - 4)
    if crc != zlib.crc32(data[:expected - 4]):
        raise FormatError("checksum mismatch: the file is corrupted")
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise FormatError(f"invalid image size {height}x{width} in header")
    return Packed(model_id=model_id.hex(), height=height, width=width,
                  payload=data[HEADER_BYTES:expected - 4])
