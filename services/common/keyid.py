"""A key's id: a short hash of its public PEM, so the gateway and services agree without config."""

import hashlib


def key_id(public_pem: bytes) -> str:
    return hashlib.sha256(public_pem.strip()).hexdigest()[:16]
