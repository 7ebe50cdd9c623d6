"""Who may do what: bearer tokens mapped to user names, and the agents' pool token.

User tokens come from a JSON file (`{"<token>": "<user>"}`) or from the environment
(`UNSTUCK_USER_TOKENS="tok1=alice,tok2=bob"`); both may be given, the file wins on a clash.
The pool token that agents present comes from `UNSTUCK_POOL_TOKEN` or a file holding it.
Tokens are compared in constant time. A request without a known token has no identity: the
API refuses create, confirm and cancel with 401 before the core sees them, so the store and
the history do not change.
"""

from __future__ import annotations

import hmac
import json
import os
from dataclasses import dataclass, field
from pathlib import Path


class IdentityConfigError(ValueError):
    """A token file or variable that cannot be used; the message names it and the fix."""


@dataclass(frozen=True)
class Identities:
    users: dict[str, str] = field(default_factory=dict)
    pool_token: str | None = None

    def user_for(self, authorization: str | None) -> str | None:
        token = bearer(authorization)
        if token is None:
            return None
        for known, user in self.users.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return user
        return None

    def agent_ok(self, authorization: str | None) -> bool:
        token = bearer(authorization)
        return (token is not None and self.pool_token is not None
                and hmac.compare_digest(self.pool_token.encode(), token.encode()))


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def parse_user_tokens(text: str, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, item in enumerate(p for p in text.split(",") if p.strip()):
        token, sep, user = item.partition("=")
        if not sep or not token.strip() or not user.strip():
            raise IdentityConfigError(
                f"{where}: item {i + 1} {item.strip()!r} is not TOKEN=USER; "
                "write e.g. UNSTUCK_USER_TOKENS='s3cret=alice,0ther=bob'")
        out[token.strip()] = user.strip()
    return out


def load_users(path: str | os.PathLike[str] | None, env: dict[str, str]) -> dict[str, str]:
    users = parse_user_tokens(env.get("UNSTUCK_USER_TOKENS", ""), "UNSTUCK_USER_TOKENS")
    if path is not None:
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise IdentityConfigError(f"{p}: cannot read the user token file ({exc.strerror})") from None
        except ValueError as exc:
            raise IdentityConfigError(
                f"{p}: not JSON ({exc}); write an object mapping token to user name, "
                'e.g. {"s3cret": "alice"}') from None
        if not isinstance(data, dict) or not all(
                isinstance(k, str) and k and isinstance(v, str) and v for k, v in data.items()):
            raise IdentityConfigError(
                f"{p}: expected a JSON object mapping each token (string) to a user name "
                '(string), e.g. {"s3cret": "alice"}')
        users.update(data)
    return users


def load_pool_token(path: str | os.PathLike[str] | None, env: dict[str, str]) -> str | None:
    if path is not None:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise IdentityConfigError(f"{path}: cannot read the pool token file ({exc.strerror})") from None
        except UnicodeDecodeError as exc:
            raise IdentityConfigError(f"{path}: the pool token file is not UTF-8 text ({exc.reason} at "
                                      f"byte {exc.start}); write the token in it as plain text") from None
        if not token:
            raise IdentityConfigError(f"{path}: the pool token file is empty; put the token in it")
        return token
    token = env.get("UNSTUCK_POOL_TOKEN", "").strip()
    return token or None
