"""The key check of a websocket upgrade or an API request, in constant time.

The SDK sends the key as ``Ocp-Apim-Subscription-Key: KEY``, or ``Authorization: Bearer TOKEN``
when an authorization token is set; either may carry the server's key. The key is compared
with ``hmac.compare_digest`` so response time says nothing about how much of it matched.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence

SUBSCRIPTION_HEADER = "Ocp-Apim-Subscription-Key"


def _matches(given: str | None, key: bytes) -> bool:
    if given is None:
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), key)


def _only(values: Sequence[str]) -> str | None:
    """The header's value when it is sent exactly once; a repeated credential counts as none."""
    return values[0] if len(values) == 1 else None


def authorized(get_all: Callable[[str], Sequence[str]], key: str | None) -> bool:
    """True when no key is required, or a credential header carries ``key``.

    ``get_all(name)`` returns every value of a request header (as aiohttp's ``getall`` does).
    """
    if key is None:
        return True
    secret = key.encode("utf-8")
    subscription = _matches(_only(get_all(SUBSCRIPTION_HEADER)), secret)
    token = None
    bearer = _only(get_all("Authorization"))
    if bearer is not None:
        scheme, _, rest = bearer.strip().partition(" ")
        token = rest if scheme.lower() == "bearer" else None
    # Both comparisons always run, whichever header the client used.
    return subscription | _matches(token, secret)
