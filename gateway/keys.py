"""The gateway's signing key: loaded from a file; generated on first start in dev only."""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose.exceptions import JOSEError

from services.common.auth import public_jwk
from services.common.keyid import key_id


class KeyError_(RuntimeError):
    """The gateway cannot sign tokens; the message says what to do."""


@dataclass(frozen=True)
class SigningKey:
    private_pem: bytes
    public_pem: bytes
    kid: str
    published: list[dict[str, Any]] = field(default_factory=list)

    def jwks(self) -> dict[str, Any]:
        return {"keys": self.published}


def _public_pem(private_pem: bytes) -> bytes:
    private = serialization.load_pem_private_key(private_pem, password=None)
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def generate_private_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _previous(path: Path) -> dict[str, Any]:
    """The JWKS entry of a retired key (its public PEM, or the old private PEM itself),
    published until the tokens it signed have expired."""
    try:
        pem = path.read_bytes()
        if b"PRIVATE KEY" in pem:
            pem = _public_pem(pem)
        # Written the way the gateway writes its own, so the kid is the one it signed with.
        pem = serialization.load_pem_public_key(pem).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return public_jwk(pem, key_id(pem))
    except (OSError, ValueError, TypeError, JOSEError) as exc:
        raise KeyError_(
            f"{path} (in GATEWAY_PREVIOUS_PUBLIC_KEY_FILES) is not a readable RSA public key "
            f"in PEM: {exc}"
        ) from None


def load_signing_key(
    path: Path, *, generate: bool, previous_public: list[Path] | None = None
) -> SigningKey:
    """Read the private key (PEM). With `generate` (dev), create it when missing, mode 0600,
    and its public half beside it for tools that verify without the JWKS.

    A rotation: start with the new key and the old public key in `previous_public` (both are
    published; tokens the old key signed keep verifying), and once those tokens have expired
    (access_token_seconds after the switch), restart with the new key alone."""
    if not path.exists():
        if not generate:
            raise KeyError_(
                f"no signing key at {path}: set GATEWAY_PRIVATE_KEY_FILE to an RSA private "
                "key in PEM (openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = generate_private_pem()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        path.with_name("gateway-public.pem").write_bytes(_public_pem(pem))
    private_pem = path.read_bytes()
    try:
        public_pem = _public_pem(private_pem)
    except (ValueError, TypeError) as exc:
        raise KeyError_(f"{path} is not an unencrypted RSA private key in PEM: {exc}") from None
    kid = key_id(public_pem)
    published = [public_jwk(public_pem, kid)]
    for old in previous_public or []:
        entry = _previous(old)
        if all(entry["kid"] != known["kid"] for known in published):
            published.append(entry)
    return SigningKey(private_pem=private_pem, public_pem=public_pem, kid=kid, published=published)
