"""ipseclab.crypto.dh: MODP, ECP and Curve25519 groups with IKE wire encodings."""

from __future__ import annotations

import pytest

from ipseclab.crypto._modp_primes import MODP_PRIMES
from ipseclab.crypto.dh import dh_group, supported_groups
from ipseclab.crypto.rng import SeededRng
from ipseclab.errors import CryptoError

u = bytes.fromhex

PUBLIC_SIZES = {
    1: 96,
    2: 128,
    5: 192,
    14: 256,
    15: 384,
    16: 512,
    17: 768,
    18: 1024,
    19: 64,
    20: 96,
    21: 132,
    31: 32,
}


class FixedRng:
    """Hands out the given bytes, to load a known private value through generate()."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def random_bytes(self, n: int) -> bytes:
        out, self._data = self._data[:n], self._data[n:]
        assert len(out) == n
        return out


def _pi_times_2_to(bits: int) -> int:
    """floor(pi * 2**bits) by Machin's formula in integer arithmetic (64 guard bits)."""

    def arctan_inv(x: int, one: int) -> int:
        total = term = one // x
        n, sign = 1, -1
        while term:
            term //= x * x
            total += sign * (term // (2 * n + 1))
            sign, n = -sign, n + 1
        return total

    one = 1 << (bits + 64)
    return (4 * (4 * arctan_inv(5, one) - arctan_inv(239, one))) >> 64


@pytest.mark.parametrize("number", sorted(MODP_PRIMES))
def test_modp_primes_match_rfc_formula(number: int) -> None:
    # RFC 2409 §6.1/6.2 and RFC 3526: p = 2^n - 2^(n-64) - 1 + 2^64 * (floor(2^(n-130) pi) + k)
    p, g, k = MODP_PRIMES[number]
    n = p.bit_length()
    assert g == 2
    assert p == 2**n - 2 ** (n - 64) - 1 + 2**64 * (_pi_times_2_to(n - 130) + k)


def test_ecp_orders_match_cryptography() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from ipseclab.crypto.dh import _ECP_ORDERS

    curves = {19: ec.SECP256R1(), 20: ec.SECP384R1(), 21: ec.SECP521R1()}
    for number, curve in curves.items():
        order = getattr(curve, "group_order", None)  # cryptography >= 44
        if order is None:
            pytest.skip("this cryptography does not expose group_order")
        assert _ECP_ORDERS[number] == order


def test_supported_groups_and_sizes() -> None:
    assert supported_groups() == tuple(sorted(PUBLIC_SIZES))
    for number, size in PUBLIC_SIZES.items():
        group = dh_group(number)
        assert group.number == number and group.public_size == size
    assert dh_group(14).kind == "modp" and dh_group(14).name == "modp2048"
    assert dh_group(19).kind == "ecp" and dh_group(31).kind == "curve25519"
    with pytest.raises(CryptoError, match="DH group 22 is not supported"):
        dh_group(22)


@pytest.mark.parametrize("number", sorted(PUBLIC_SIZES))
def test_both_sides_agree(number: int) -> None:
    group = dh_group(number)
    rng = SeededRng(2024, f"group{number}")
    a, b = group.generate(rng.fork("i")), group.generate(rng.fork("r"))
    assert len(a.public_bytes) == len(b.public_bytes) == group.public_size
    secret = a.shared_secret(b.public_bytes)
    assert secret == b.shared_secret(a.public_bytes)
    expected_len = group.public_size // 2 if group.kind == "ecp" else group.public_size
    assert len(secret) == expected_len


@pytest.mark.parametrize("number", [2, 14, 19, 21, 31])
def test_seeded_rng_is_reproducible(number: int) -> None:
    group = dh_group(number)
    first = group.generate(SeededRng(5, "x")).public_bytes
    assert group.generate(SeededRng(5, "x")).public_bytes == first
    assert group.generate(SeededRng(5, "y")).public_bytes != first


def test_private_key_not_in_repr() -> None:
    pair = dh_group(19).from_private_bytes(u(RFC5903[19]["i"]))
    text = repr(pair)
    assert RFC5903[19]["i"] not in text.lower()
    assert "ecp256" in text and "64 bytes" in text


# RFC 5903 §8.1-§8.3 (group 19, 20, 21): i, g^i = (gix, giy), r, g^r, g^ir x coordinate.
RFC5903 = {
    19: {
        "i": "c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433",
        "gix": "dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c3772581180",
        "giy": "5271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58389e0577b8990bb3",
        "r": "c6ef9c5d78ae012a011164acb397ce2088685d8f06bf9be0b283ab46476bee53",
        "grx": "d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf63",
        "gry": "56fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab",
        "girx": "d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de",
    },
    20: {
        "i": "099f3c7034d4a2c699884d73a375a67f7624ef7c6b3c0f160647b67414dce655"
        "e35b538041e649ee3faef896783ab194",
        "gix": "667842d7d180ac2cde6f74f37551f55755c7645c20ef73e31634fe72b4c55ee6"
        "de3ac808acb4bdb4c88732aee95f41aa",
        "giy": "9482ed1fc0eeb9cafc4984625ccfc23f65032149e0e144ada024181535a0f38e"
        "eb9fcff3c2c947dae69b4c634573a81c",
        "r": "41cb0779b4bdb85d47846725fbec3c9430fab46cc8dc5060855cc9bda0aa2942"
        "e0308312916b8ed2960e4bd55a7448fc",
        "grx": "e558dbef53eecde3d3fccfc1aea08a89a987475d12fd950d83cfa41732bc509d"
        "0d1ac43a0336def96fda41d0774a3571",
        "gry": "dcfbec7aacf3196472169e838430367f66eebe3c6e70c416dd5f0c68759dd1ff"
        "f83fa40142209dff5eaad96db9e6386c",
        "girx": "11187331c279962d93d604243fd592cb9d0a926f422e47187521287e7156c5c4"
        "d603135569b9e9d09cf5d4a270f59746",
    },
    21: {
        "i": "0037ade9319a89f4dabdb3ef411aaccca5123c61acab57b5393dce47608172a0"
        "95aa85a30fe1c2952c6771d937ba9777f5957b2639bab072462f68c27a57382d4a52",
        "gix": "0015417e84dbf28c0ad3c278713349dc7df153c897a1891bd98bab4357c9ecbe"
        "e1e3bf42e00b8e380aeae57c2d107564941885942af5a7f4601723c4195d176ced3e",
        "giy": "017cae20b6641d2eeb695786d8c946146239d099e18e1d5a514c739d7cb4a10a"
        "d8a788015ac405d7799dc75e7b7d5b6cf2261a6a7f1507438bf01beb6ca3926f9582",
        "r": "0145ba99a847af43793fdd0e872e7cdfa16be30fdc780f97bccc3f078380201e"
        "9c677d600b343757a3bdbf2a3163e4c2f869cca7458aa4a4effc311f5cb151685eb9",
        "grx": "00d0b3975ac4b799f5bea16d5e13e9af971d5e9b984c9f39728b5e5739735a21"
        "9b97c356436adc6e95bb0352f6be64a6c2912d4ef2d0433ced2b6171640012d9460f",
        "gry": "015c68226383956e3bd066e797b623c27ce0eac2f551a10c2c724d9852077b87"
        "220b6536c5c408a1d2aebb8e86d678ae49cb57091f4732296579ab44fcd17f0fc56a",
        "girx": "01144c7d79ae6956bc8edb8e7c787c4521cb086fa64407f97894e5e6b2d79b04"
        "d1427e73ca4baa240a34786859810c06b3c715a3a8cc3151f2bee417996d19f3ddea",
    },
}


@pytest.mark.parametrize("number", [19, 20, 21])
def test_rfc5903_vectors(number: int) -> None:
    vec = RFC5903[number]
    group = dh_group(number)
    # Through generate(), to show the private value really comes from the rng.
    initiator = group.generate(FixedRng(u(vec["i"])))
    responder = group.from_private_bytes(u(vec["r"]))
    assert initiator.public_bytes == u(vec["gix"] + vec["giy"])  # RFC 5903 §7: x || y
    assert responder.public_bytes == u(vec["grx"] + vec["gry"])
    assert initiator.shared_secret(responder.public_bytes) == u(vec["girx"])
    assert responder.shared_secret(initiator.public_bytes) == u(vec["girx"])


def test_rfc7748_x25519_vector() -> None:
    # RFC 7748 §6.1.
    group = dh_group(31)
    alice = group.generate(
        FixedRng(u("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
    )
    bob = group.from_private_bytes(
        u("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    )
    assert alice.public_bytes == u(
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    )
    assert bob.public_bytes == u("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    shared = u("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    assert alice.shared_secret(bob.public_bytes) == shared
    assert bob.shared_secret(alice.public_bytes) == shared


@pytest.mark.parametrize("number", [1, 2, 14])
def test_modp_rejects_degenerate_peer_values(number: int) -> None:
    group = dh_group(number)
    pair = group.generate(SeededRng(1))
    p = MODP_PRIMES[number][0]
    size = group.public_size
    for bad in (0, 1, p - 1):
        with pytest.raises(CryptoError, match="degenerate"):
            pair.shared_secret(bad.to_bytes(size, "big"))
    for bad in (p, p + 1, 2 ** (8 * size) - 1):
        with pytest.raises(CryptoError, match="not below the prime"):
            pair.shared_secret(bad.to_bytes(size, "big"))


@pytest.mark.parametrize("number", sorted(PUBLIC_SIZES))
def test_wrong_length_rejected(number: int) -> None:
    group = dh_group(number)
    pair = group.generate(SeededRng(3))
    for size in (group.public_size - 1, group.public_size + 1, 0):
        with pytest.raises(CryptoError, match=f"expects a {group.public_size}-byte"):
            pair.shared_secret(bytes(size))


@pytest.mark.parametrize("number", [19, 20, 21])
def test_ecp_rejects_points_off_the_curve(number: int) -> None:
    group = dh_group(number)
    pair = group.generate(SeededRng(4))
    good = group.generate(SeededRng(5)).public_bytes
    tampered = good[:-1] + bytes([good[-1] ^ 1])  # y changed: off the curve
    for bad in (tampered, bytes(group.public_size), b"\xff" * group.public_size):
        with pytest.raises(CryptoError, match="not a point"):
            pair.shared_secret(bad)


def test_x25519_rejects_low_order_points() -> None:
    pair = dh_group(31).generate(SeededRng(6))
    for low_order in (bytes(32), b"\x01" + bytes(31)):
        with pytest.raises(CryptoError, match="low-order"):
            pair.shared_secret(low_order)


def test_from_private_bytes_range_checks() -> None:
    with pytest.raises(CryptoError):
        dh_group(19).from_private_bytes(bytes(32))
    with pytest.raises(CryptoError):
        dh_group(19).from_private_bytes(b"\xff" * 32)
    with pytest.raises(CryptoError):
        dh_group(14).from_private_bytes(b"\x01")
    with pytest.raises(CryptoError):
        dh_group(31).from_private_bytes(bytes(31))
    pair = dh_group(2).from_private_bytes((12345).to_bytes(2, "big"))
    p = MODP_PRIMES[2][0]
    assert pair.public_bytes == pow(2, 12345, p).to_bytes(128, "big")
