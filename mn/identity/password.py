"""Account passwords: what clients send and what we store.

A ZStack client never sends the password itself but its SHA-512 digest in
lower-case hex (:func:`client_digest`); that digest is what an attacker
reading the database must not be able to replay, so we store a salted,
deliberately slow hash of it::

    scrypt$<n>$<r>$<p>$<salt, base64>$<hash, base64>

``n``, ``r`` and ``p`` are scrypt's cost parameters, recorded per row so
that raising them later keeps old rows verifiable. Hashing takes tens of
milliseconds and some memory on purpose: call these functions in a thread
(``asyncio.to_thread``), never on the event loop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
#: scrypt cost: 2**14 iterations of 8 x 128 bytes = 16 MiB and ~50 ms per hash.
SCRYPT_N = 2 ** 14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
#: scrypt refuses to use more memory than this; 2x what our parameters need.
_MAXMEM = 64 * 1024 * 1024


def client_digest(password: str) -> str:
    """What a ZStack client sends for ``password``: SHA-512, lower-case hex."""
    return hashlib.sha512(password.encode()).hexdigest()


def hash_password(digest: str) -> str:
    """The stored form of the client's ``digest``, with a fresh salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(digest, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return "$".join((SCHEME, str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                     _b64(salt), _b64(key)))


def verify_password(digest: str, stored: str) -> bool:
    """Whether ``digest`` is the one ``stored`` was made from (constant time).

    A malformed ``stored`` value never matches.
    """
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != SCHEME:
            return False
        expected = base64.b64decode(key, validate=True)
        actual = _scrypt(digest, base64.b64decode(salt, validate=True), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def burn_time(digest: str) -> None:
    """Spend what a verification costs, for an unknown account: the reply
    time must not tell which account names exist."""
    _scrypt(digest, bytes(SALT_BYTES), SCRYPT_N, SCRYPT_R, SCRYPT_P)


def _scrypt(digest: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(digest.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM,
                          dklen=HASH_BYTES)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
