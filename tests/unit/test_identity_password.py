"""Stored account passwords: salted scrypt over the client's SHA-512 hex."""

import pytest

from mn.identity import ADMIN_INITIAL_PASSWORD
from mn.identity.password import SCHEME, client_digest, hash_password, verify_password


def test_the_admin_initial_password_is_zstacks_digest_of_password():
    assert client_digest("password") == ADMIN_INITIAL_PASSWORD


def test_hash_verifies_only_its_own_digest():
    stored = hash_password(client_digest("s3cret"))
    assert verify_password(client_digest("s3cret"), stored)
    assert not verify_password(client_digest("S3cret"), stored)
    assert not verify_password("s3cret", stored)  # the plain password is not what clients send


def test_hash_is_salted_and_self_describing():
    first, second = hash_password("d" * 128), hash_password("d" * 128)
    assert first != second
    scheme, n, r, p, salt, key = first.split("$")
    assert (scheme, int(n), int(r), int(p)) == (SCHEME, 2 ** 14, 8, 1)
    assert salt != second.split("$")[4]
    assert "d" * 128 not in first
    assert len(first) <= 255  # fits AccountVO.password


@pytest.mark.parametrize("stored", ["", "plain", "d" * 128, "bcrypt$1$2$3$AAAA$AAAA",
                                    "scrypt$x$8$1$AAAA$AAAA", "scrypt$16384$8$1$!!$AAAA"])
def test_malformed_stored_values_never_match(stored):
    assert not verify_password("d" * 128, stored)
