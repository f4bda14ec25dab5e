"""Hashing secrets. Passwords are people's choices: Argon2id, which costs about a quarter of a
second of CPU each time, so it runs in a few worker threads, never on the event loop (one system
looping on sign-ins would otherwise stall every route). API client secrets are 256 random bits,
which no guessing can reach: a keyed HMAC-SHA256 with the directory's key is enough, and fast.
A client secret stored before that (Argon2) is checked once the slow way, then re-keyed."""

import asyncio
import hashlib
import hmac
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

hasher = PasswordHasher()
HMAC_PREFIX = "hmac-sha256$"
_workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")


def use_workers(count: int) -> None:
    """At most `count` Argon2 computations at once (each holds 64 MiB); the rest wait."""
    global _workers
    old, _workers = _workers, ThreadPoolExecutor(max_workers=count, thread_name_prefix="argon2")
    old.shutdown(wait=False)


def hash_secret(secret: str) -> str:
    """Argon2id, here and now: for seeding and tests, not for request handlers."""
    return hasher.hash(secret)


def _verify_now(hash_: str, secret: str) -> bool:
    try:
        return hasher.verify(hash_, secret)
    except (VerificationError, InvalidHashError):
        return False


async def hash_password(secret: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_workers, hasher.hash, secret)


async def verify_password(hash_: str, secret: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(_workers, _verify_now, hash_, secret)


def needs_rehash(hash_: str) -> bool:
    return hasher.check_needs_rehash(hash_)


def client_secret_hash(secret: str, key: bytes) -> str:
    return HMAC_PREFIX + hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def is_keyed(hash_: str) -> bool:
    return hash_.startswith(HMAC_PREFIX)


def client_secret_ok(hash_: str, secret: str, key: bytes) -> bool:
    return hmac.compare_digest(hash_, client_secret_hash(secret, key))
