"""SigV4 for the deployed API, which API Gateway guards with IAM authorization, with botocore's own signer; and the
rule for when to sign, the TypeScript client's (``client/request-signing.ts``): never on loopback (the local
stack's API is open there), always elsewhere, and never over plain http."""

from __future__ import annotations

import ipaddress
from typing import Dict, Mapping, Optional
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .errors import ConfigurationError

SERVICE = "execute-api"


def is_loopback(url: str) -> bool:
    """True for the local stack's URLs: ``localhost``, ``*.localhost``, ``127.x.y.z`` and ``[::1]``, spelled out
    literally; anything else is taken to be API Gateway (a name that happens to resolve to loopback included)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    # `ipaddress` takes only the dotted form, as the TypeScript client does: `127.1` or `0x7f.0.0.1` are names here.
    return address.is_loopback and (address.version == 4 or host == "::1")


def assert_safe_to_sign(url: str) -> None:
    """Raises unless a signed request to ``url`` travels encrypted: over plain http, anyone on the path would get the
    request, its session token and a signature they can replay for five minutes."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise ConfigurationError(
            f"Refusing to send a signed request over plain {parts.scheme} to {parts.netloc}: use the https:// URL of "
            "the API (only a loopback URL, the local stack, may be plain http, and it is not signed)"
        )


def signature_headers(
    method: str,
    url: str,
    region: str,
    credentials: Credentials,
    body: Optional[bytes] = None,
    headers: Optional[Mapping[str, str]] = None,
) -> Dict[str, str]:
    """The headers that authenticate this request as the caller's AWS identity, ``headers`` and the body included.
    ``url`` must be percent-encoded exactly as it will be sent."""
    assert_safe_to_sign(url)
    request = AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers or {}))
    SigV4Auth(credentials, SERVICE, region).add_auth(request)
    # The HTTP library sets Host from the URL itself; botocore signed that same value.
    return {name: value for name, value in request.headers.items() if name.lower() != "host"}
