"""Gateway dependencies: token form parsing (OAuth2, RFC 6749) and the client's address."""

import base64
import binascii
import ipaddress
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import Annotated
from urllib.parse import unquote

from fastapi import Form, Request

from gateway.errors import OAuthError


@dataclass(frozen=True)
class TokenRequest:
    grant_type: str
    username: str | None
    password: str | None
    otp: str | None
    client_id: str | None
    client_secret: str | None
    refresh_token: str | None
    basic_auth: bool
    resource: str | None = None


def _basic(request: Request) -> tuple[str, str] | None:
    """Client credentials in HTTP Basic, form-urlencoded per RFC 6749 section 2.3.1."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", "The Basic credentials are malformed.", 401) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "The Basic credentials are malformed.", 401)
    return unquote(client_id), unquote(secret)


FormText = Annotated[str | None, Form(max_length=1024)]


async def token_request(
    request: Request,
    grant_type: Annotated[
        str | None,
        Form(description="password, client_credentials or refresh_token", max_length=64),
    ] = None,
    username: FormText = None,
    password: FormText = None,
    otp: Annotated[
        str | None, Form(description="Current TOTP code, where enrolled", max_length=16)
    ] = None,
    client_id: FormText = None,
    client_secret: FormText = None,
    refresh_token: FormText = None,
    scope: FormText = None,
    resource: Annotated[
        str | None,
        Form(
            description="Services only (RFC 8707): the registry name of the one service the "
            "token is for, to sign event deliveries to its inbox",
            max_length=64,
        ),
    ] = None,
) -> TokenRequest:
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is required.", field="grant_type")
    named = (await request.form()).getlist("resource")
    if len(named) > 1 or (named and not named[0]):  # one receiver per token, named
        raise OAuthError("invalid_target", "Name one resource.", field="resource")
    basic = _basic(request)
    if basic:
        client_id, client_secret = basic
    return TokenRequest(
        grant_type=grant_type,
        username=username,
        password=password,
        otp=otp or None,
        client_id=client_id,
        client_secret=client_secret,
        refresh_token=refresh_token,
        basic_auth=basic is not None,
        resource=resource,
    )


def source_address(
    peer: str, forwarded: list[str], trusted: list[IPv4Network | IPv6Network]
) -> str:
    """The address a request comes from: the peer, or, while the address in hand is one of
    our trusted proxies, the hop it says it forwarded for (X-Forwarded-For, right to left).
    A client can write anything to the left of what our proxy appends; none of it is read
    past the first untrusted address."""
    hops = [hop.strip() for value in forwarded for hop in value.split(",") if hop.strip()]
    address = peer
    while hops and _is_trusted(address, trusted):
        hop = hops.pop()
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # unreadable: the last proxy is as far as we can trust
        address = hop
    return _source(address)


def _source(address: str) -> str:
    """What the sign-in throttles and the lockout count as one source: an IPv4 address, or
    an IPv6 address's /64, which one subscriber holds whole (counting each of its addresses
    apart would give one attacker as many sources as it likes)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _is_trusted(address: str, trusted: list[IPv4Network | IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(request: Request) -> str:
    peer = request.client.host if request.client else "unknown"
    trusted = request.app.state.settings.trusted_proxies
    return source_address(peer, request.headers.getlist("x-forwarded-for"), trusted)
