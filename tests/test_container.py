"""The .e2ec container: round trip and refusal of damaged files."""

import pytest

from e2e_compress import container


def _packed(payload=b"\x01\x02\x03payload"):
    return container.Packed(model_id="0123456789abcdef", height=17, width=31,
                            payload=payload)


def test_pack_unpack_round_trip():
    data = container.pack(_packed())
    assert len(data) == container.OVERHEAD_BYTES + len(_packed().payload)
    assert data[:4] == b"E2EC"
    assert container.unpack(data) == _packed()


@pytest.mark.parametrize("mutate,message", [
    (lambda d: b"", "empty"),
    (lambda d: d[:10], "truncated"),
    (lambda d: d[:-1], "truncated"),
    (lambda d: d + b"\x00", "trailing"),
    (lambda d: b"PNG\x89" + d[4:], "magic"),
    (lambda d: d[:4] + b"\x09" + d[5:], "version"),
    (lambda d: d[:30] + bytes([d[30] ^ 0x10]) + d[31:], "checksum"),
])
def test_damaged_files_are_refused_with_a_reason(mutate, message):
    data = container.pack(_packed(payload=bytes(range(40))))
    with pytest.raises(container.FormatError, match=message):
        container.unpack(mutate(data))


def test_every_single_bit_flip_is_detected():
    data = container.pack(_packed(payload=bytes(range(20))))
    for i in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[i // 8] ^= 1 << (i % 8)
        with pytest.raises(container.FormatError):
            container.unpack(bytes(flipped))


def test_pack_rejects_bad_fields():
    with pytest.raises(ValueError, match="model id"):
        container.pack(container.Packed("xyz", 1, 1, b""))
    with pytest.raises(ValueError, match="height"):
        container.pack(container.Packed("0123456789abcdef", 0, 1, b""))


def test_seeded_fuzz_of_the_container_never_accepts_a_mutation():
    """A few hundred random mutations (flips, cuts, insertions, splices...)."""
    import random

    from e2e_compress import fuzz

    rng = random.Random(2017)
    original = container.pack(_packed(payload=bytes(rng.randrange(256)
                                                    for _ in range(300))))
    tried = 0
    for _ in range(400):
        data = fuzz.mutate(original, rng)
        if data == original:
            continue
        tried += 1
        with pytest.raises(container.FormatError):
            container.unpack(data)
    assert tried > 350


def test_resealing_makes_a_damaged_container_pass_its_checks():
    from e2e_compress import fuzz

    original = container.pack(_packed(payload=bytes(range(50))))
    cut = original[:-10]
    with pytest.raises(container.FormatError):
        container.unpack(cut)
    # The last 4 bytes are taken for the old checksum and replaced.
    assert container.unpack(fuzz.reseal(cut)).payload == bytes(range(40))
