"""Secrets kept out of what trainops records: a run's hyperparameters are stored, listed, shown on the dashboard,
sent to agents and mirrored to MLflow, so a password or an API key passed among them must not travel with them.

A value is a secret by its name: a key made of the words of one (``db_password``, ``wandb_api_key``,
``hub_token``, ``AWS_SECRET_ACCESS_KEY``, ``clientSecret``), never by guessing at the text. Token-like names that
are hyperparameters (``max_tokens``, ``pad_token_id``, ``eos_token``, ``tokenizer``) are not secrets. A URL among
the values loses its password and any query parameter named as a secret (``?token=...``, a signed URL's
``X-Amz-Signature``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

REDACTED = "<redacted>"
"""What a secret's value is recorded as."""

_SECRET_WORDS = frozenset({"password", "passwd", "passphrase", "secret", "credential", "credentials", "signature"})
"""A name holding any of these words names a secret."""
_TOKEN_KINDS = frozenset(
    {"access", "auth", "api", "hub", "bearer", "refresh", "session", "github", "gh", "hf", "wandb", "mlflow", "id"}
)
"""A name ending in ``token`` names a secret after one of these (``hub_token``) or alone (``token``); after anything
else it is a tokenizer's (``pad_token``, ``eos_token``)."""
_KEY_KINDS = frozenset({"api", "private", "access", "secret", "signing", "encryption", "license"})
"""A name ending in ``key`` names a secret after one of these (``api_key``, ``apiKey``)."""
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def words(name: str) -> list[str]:
    """The lowercase words of a name, split at punctuation, case changes and digits.

    >>> words("wandb_api_key"), words("clientSecret"), words("AWS_SECRET_ACCESS_KEY"), words("apiKey2")
    (['wandb', 'api', 'key'], ['client', 'secret'], ['aws', 'secret', 'access', 'key'], ['api', 'key', '2'])
    """
    return [word.lower() for word in _WORD.findall(name)]


def is_secret_name(name: str) -> bool:
    """Whether a key names a secret.

    >>> [is_secret_name(n) for n in ("db_password", "hub_token", "token", "apiKey", "X-Amz-Signature")]
    [True, True, True, True, True]
    >>> [is_secret_name(n) for n in ("max_tokens", "pad_token_id", "eos_token", "tokenizer", "keys", "monkey")]
    [False, False, False, False, False, False]
    """
    found = words(name)
    if _SECRET_WORDS.intersection(found) or "authorization" in found:
        return True
    if found and found[-1] in ("token", "key"):
        kinds = _TOKEN_KINDS if found[-1] == "token" else _KEY_KINDS
        return (found[-1] == "token" and len(found) == 1) or (len(found) > 1 and found[-2] in kinds)
    return False


def redacted(value: Any) -> Any:
    """``value`` (a JSON-like config: mappings, lists, scalars) with every secret's value replaced by
    :data:`REDACTED` and every URL's credentials taken out. Pure: ``value`` is not changed.

    >>> redacted({"lr": 0.01, "db": {"password": "pw", "host": "db"}, "uri": "https://u:pw@x.io/?token=t&a=1"})
    {'lr': 0.01, 'db': {'password': '<redacted>', 'host': 'db'}, 'uri': 'https://x.io/?token=%3Credacted%3E&a=1'}
    """
    if isinstance(value, Mapping):
        return {
            key: REDACTED if is_secret_name(str(key)) and item not in (None, "") else redacted(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redacted(item) for item in value]
    if isinstance(value, str) and "://" in value:
        return url_without_secrets(value)
    return value


def url_without_secrets(url: str) -> str:
    """``url`` without its user name and password, and with every query parameter named as a secret redacted.

    >>> url_without_secrets("http://user:secret@host:5000/path?sig=1&run=2")
    'http://host:5000/path?sig=1&run=2'
    >>> url_without_secrets("not a url")
    'not a url'
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # not a URL after all (a port out of range, a stray bracket): nothing to take out
        return url
    netloc = parts.netloc
    if parts.username is not None or parts.password is not None:
        host = parts.hostname or ""
        netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port is not None else "")
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(is_secret_name(name) for name, _ in pairs):
        query = urlencode([(name, REDACTED if is_secret_name(name) else item) for name, item in pairs])
    # the parts that changed are replaced in the text: urlunsplit would also rewrite what did not change
    # (``sqlite:////tmp/x.db`` comes back as ``sqlite://tmp/x.db``)
    if netloc != parts.netloc:
        url = url.replace(f"//{parts.netloc}", f"//{netloc}", 1)
    if query != parts.query:
        url = url.replace(f"?{parts.query}", f"?{query}", 1)
    return url
