"""Authentication: people get expiring opaque bearer tokens (OAuth2 password flow at
POST /auth/token); devices get API keys. Only hashes are stored.

- Passwords: scrypt with a per-user salt (stdlib hashlib.scrypt).
- Tokens and API key secrets are 256-bit random; stored as SHA-256 (a slow hash adds
  nothing for secrets that cannot be guessed). API keys look like
  `coop_<key id>_<secret>`: the id finds the row, the secret is compared in constant time.
- These tables are the gateway's credential store, not projections: they are not
  rebuilt from events. See docs/auth.md.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    String,
    Table,
    bindparam,
    delete,
    insert,
    select,
    text,
    update,
)

from gateway.unstorable_text import carries_unstorable_text
from services.common.auth import Principal, PrincipalKind, Role, device_subject
from services.common.database import LoneReads, advisory_lock_key, metadata
from services.common.errors import Conflict, NotFound, ValidationError
from services.shop.domain import check_till_id

auth_users = Table(
    "auth_users",
    metadata,
    Column("username", String(100), primary_key=True),
    Column("password_hash", String(300), nullable=False),
    Column("roles", String(200), nullable=False),  # comma-separated Role values
    Column("till_id", String(50), nullable=True),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

auth_tokens = Table(
    "auth_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("username", String(100), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

auth_api_keys = Table(
    "auth_api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("secret_hash", String(64), nullable=False),
    Column("name", String(100), nullable=False),
    Column("role", String(30), nullable=False),
    Column("till_id", String(50), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

AUTH_TABLES = (auth_users, auth_tokens, auth_api_keys)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
KEY_PREFIX = "coop"


class AuthenticationFailed(Exception):
    """Missing, wrong, expired or revoked credentials. Never says which."""


def _sha256(secret: str) -> str:
    # "surrogatepass": a credential sent as JSON (a WebSocket's connection_init) may
    # carry a lone surrogate; it hashes to nothing stored instead of failing to encode.
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _scheme, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    digest = hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"), salt=bytes.fromhex(salt_hex), **_SCRYPT
    )
    return hmac.compare_digest(digest.hex(), digest_hex)


@functools.cache
def _no_user_hash() -> str:
    """A hash to verify an unknown user's password against: made once, so a sign-in
    costs one scrypt whether or not the user exists (hashing a fresh one each time
    made unknown names twice as slow, which told them apart)."""
    return hash_password(secrets.token_hex(16))


def _roles(text: str) -> frozenset[Role]:
    return frozenset(Role(r) for r in text.split(",") if r)


def check_till_scope(roles: frozenset[Role], till_id: str | None) -> None:
    """A volunteer acts on one till, so has one; nobody else has one, because a till
    scope on another role would silently narrow what that role may do."""
    if till_id is None:
        if Role.VOLUNTEER in roles:
            raise ValidationError("till", "a volunteer is scoped to one till")
        return
    if Role.VOLUNTEER not in roles:
        raise ValidationError("till", "only a volunteer is scoped to a till")
    check_till_id(till_id, field="till")


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    key: str  # shown once, never stored


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class UserInfo:
    """What an admin may see of a user: never the password hash."""

    username: str
    roles: frozenset[Role]
    till_id: str | None
    disabled: bool
    created_at: datetime


MAX_USERNAME_LENGTH = 100  # auth_users.username


def check_username(username: str) -> None:
    """A new user's name: 1 to 100 characters, no whitespace anywhere (a name with a
    trailing space signs in as a different person from the one the admin sees)."""
    if not username or len(username) > MAX_USERNAME_LENGTH:
        raise ValidationError("username", "a username is 1 to 100 characters")
    if any(character.isspace() for character in username):
        raise ValidationError("username", "a username has no spaces or other whitespace in it")


def could_be_a_username(username: str) -> bool:
    """Whether any user could have this name, stored now or before check_username's
    rules: not too long for the table, no text a store refuses. A sign-in with any
    other name fails at once, before its throttle and the password hash: no one's
    allowance is at stake, and neither the throttle's memory nor the CPU is spent."""
    return 0 < len(username) <= MAX_USERNAME_LENGTH and not carries_unstorable_text(username)


class CredentialStore:
    """Writes (CLI, login) through the sync engine; request checks through the async one."""

    def __init__(self, engine: Engine, token_ttl_s: int) -> None:
        self.engine = engine
        self.token_ttl_s = token_ttl_s

    # -- people -----------------------------------------------------------------

    def add_user(
        self, username: str, password: str, roles: frozenset[Role], till_id: str | None = None
    ) -> None:
        check_username(username)
        if len(password) < 12:
            raise ValidationError("password", "must be at least 12 characters")
        if not roles:
            raise ValidationError("roles", "at least one role")
        check_till_scope(roles, till_id)
        folded = username.casefold()
        with self.engine.begin() as conn:
            # Names that differ only in case would be two people to the database and
            # one to anyone reading them. Compared in Python over every name: SQLite's
            # lower() folds ASCII only, and a cooperative has tens of users, not millions.
            for existing in conn.execute(select(auth_users.c.username)).scalars():
                if existing == username:
                    raise Conflict(f"user {username!r} already exists")
                if existing.casefold() == folded:
                    raise Conflict(
                        f"user {existing!r} already exists ({username!r} differs in case)"
                    )
            conn.execute(
                insert(auth_users).values(
                    username=username,
                    password_hash=hash_password(password),
                    roles=",".join(sorted(r.value for r in roles)),
                    till_id=till_id,
                    disabled=False,
                    created_at=datetime.now(UTC),
                )
            )

    def list_users(self) -> list[UserInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    auth_users.c.username,
                    auth_users.c.roles,
                    auth_users.c.till_id,
                    auth_users.c.disabled,
                    auth_users.c.created_at,
                ).order_by(auth_users.c.username)
            ).all()
        return [
            UserInfo(row.username, _roles(row.roles), row.till_id, row.disabled, row.created_at)
            for row in rows
        ]

    def disable_user(self, username: str) -> bool:
        """Disable a user and revoke their tokens; False if they were disabled already."""
        return self._set_disabled(username, disabled=True)

    def enable_user(self, username: str) -> bool:
        """Enable a disabled user; False if they were not disabled. Their tokens from
        before stay revoked: they sign in again."""
        return self._set_disabled(username, disabled=False)

    def _set_disabled(self, username: str, *, disabled: bool) -> bool:
        with self.engine.begin() as conn:
            was = conn.execute(
                select(auth_users.c.disabled)
                .where(auth_users.c.username == username)
                .with_for_update()
            ).scalar_one_or_none()
            if was is None:
                raise NotFound(f"user {username!r} does not exist")
            if was or disabled:
                # Tokens are deleted, not only refused while the user is disabled (the
                # lookup checks the user's flag): kept, they would work again once the
                # user is enabled. Deleted on enabling too: a store disabled before this
                # rule, or a sign-in that raced the disabling, may still hold some.
                conn.execute(delete(auth_tokens).where(auth_tokens.c.username == username))
            if was == disabled:
                return False
            conn.execute(
                update(auth_users)
                .where(auth_users.c.username == username)
                .values(disabled=disabled)
            )
            return True

    def issue_token(self, username: str, password: str) -> IssuedToken:
        if not could_be_a_username(username):
            # No user has such a name (none could be stored), and PostgreSQL refuses
            # the NUL character even in a lookup: it was a plain 500 at /auth/token.
            raise AuthenticationFailed
        with self.engine.begin() as conn:
            row = conn.execute(
                select(auth_users.c.password_hash, auth_users.c.disabled).where(
                    auth_users.c.username == username
                )
            ).first()
            # Verify even for unknown users so timing does not reveal which exist.
            stored = row[0] if row else _no_user_hash()
            if not verify_password(password, stored) or row is None or row[1]:
                raise AuthenticationFailed
            token = secrets.token_urlsafe(32)
            now = datetime.now(UTC)
            expires_at = now + timedelta(seconds=self.token_ttl_s)
            # Expired tokens are of no use to anyone: each sign-in clears them, so the
            # table holds about the tokens alive now (a few per person) and no record of
            # who signed in when beyond a token's life.
            conn.execute(delete(auth_tokens).where(auth_tokens.c.expires_at <= now))
            conn.execute(
                insert(auth_tokens).values(
                    token_hash=_sha256(token),
                    username=username,
                    expires_at=expires_at,
                    created_at=now,
                )
            )
        return IssuedToken(token, expires_at)

    def revoke_token(self, token: str) -> None:
        """Sign out: the token stops working at once. An unknown, expired or already
        revoked token changes nothing (RFC 7009: the caller learns nothing either way)."""
        if carries_unstorable_text(token):
            return  # no token holds such text, and PostgreSQL refuses it in a lookup
        with self.engine.begin() as conn:
            conn.execute(delete(auth_tokens).where(auth_tokens.c.token_hash == _sha256(token)))

    # -- devices ----------------------------------------------------------------

    def issue_key(self, name: str, role: Role, till_id: str | None = None) -> IssuedKey:
        if not name or len(name) > 100:
            raise ValidationError("name", "must be 1 to 100 characters")
        check_till_scope(frozenset({role}), till_id)
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            self._check_one_device_per_name(conn, name, role, till_id)
            conn.execute(
                insert(auth_api_keys).values(
                    key_id=key_id,
                    secret_hash=_sha256(secret),
                    name=name,
                    role=role.value,
                    till_id=till_id,
                    created_at=datetime.now(UTC),
                    revoked_at=None,
                )
            )
        return IssuedKey(key_id, f"{KEY_PREFIX}_{key_id}_{secret}")

    @staticmethod
    def _check_one_device_per_name(
        conn: Connection, name: str, role: Role, till_id: str | None
    ) -> None:
        """A key's name is its device: the keys issued under one name (a rotation's new
        key and the old) have one role and one till. A retry is matched by the name
        (services.common.auth.requester), so a till's retry after its key was replaced
        is answered; under a name shared by two tills, the other till could have been
        answered with this one's sales."""
        if conn.dialect.name == "postgresql":
            # Two keys issued at once under one name: one waits for the other's commit.
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
            lock = advisory_lock_key("api-key-names", str(schema))
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})
        keys = auth_api_keys.c
        scopes = conn.execute(
            select(keys.role, keys.till_id).where(keys.name == name).distinct()
        ).all()
        if any(
            (scope_role, scope_till) != (role.value, till_id) for scope_role, scope_till in scopes
        ):
            raise ValidationError(
                "name",
                f"keys named {name!r} are another device's (another role or till): a name "
                "is one device, give this one its own (a new key under a device's name "
                "replaces its key: same role and till)",
            )

    def revoke_key(self, key_id: str) -> None:
        with self.engine.begin() as conn:
            result = conn.execute(
                update(auth_api_keys)
                .where(auth_api_keys.c.key_id == key_id)
                .where(auth_api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
            if result.rowcount != 1:
                raise NotFound(f"no active key {key_id!r}")

    def list_keys(self) -> list[dict[str, object]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    auth_api_keys.c.key_id,
                    auth_api_keys.c.name,
                    auth_api_keys.c.role,
                    auth_api_keys.c.till_id,
                    auth_api_keys.c.created_at,
                    auth_api_keys.c.revoked_at,
                ).order_by(auth_api_keys.c.created_at)
            ).mappings()
            return [dict(row) for row in rows]


# Built once: LoneReads compiles each statement once (see services/common/database.py).
TOKEN_LOOKUP = (
    select(
        auth_tokens.c.expires_at,
        auth_users.c.username,
        auth_users.c.roles,
        auth_users.c.till_id,
        auth_users.c.disabled,
    )
    .join(auth_users, auth_users.c.username == auth_tokens.c.username)
    .where(auth_tokens.c.token_hash == bindparam("token_hash"))
)
KEY_LOOKUP = select(
    auth_api_keys.c.secret_hash,
    auth_api_keys.c.name,
    auth_api_keys.c.role,
    auth_api_keys.c.till_id,
    auth_api_keys.c.revoked_at,
).where(auth_api_keys.c.key_id == bindparam("key_id"))


async def principal_for_token(reads: LoneReads, token: str) -> Principal:
    row = await reads.first(TOKEN_LOOKUP, {"token_hash": _sha256(token)})
    if row is None or row["disabled"] or _utc(row["expires_at"]) <= datetime.now(UTC):
        raise AuthenticationFailed
    return Principal(row["username"], PrincipalKind.PERSON, _roles(row["roles"]), row["till_id"])


async def principal_for_key(reads: LoneReads, key: str) -> Principal:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        raise AuthenticationFailed
    _prefix, key_id, secret = parts
    if carries_unstorable_text(key_id):
        # No key has such an id; PostgreSQL refuses it even in a lookup (a key sent in
        # a WebSocket's connection_init is JSON, which may carry one).
        raise AuthenticationFailed
    row = await reads.first(KEY_LOOKUP, {"key_id": key_id})
    if row is None or row["revoked_at"] is not None:
        raise AuthenticationFailed
    if not hmac.compare_digest(row["secret_hash"], _sha256(secret)):
        raise AuthenticationFailed
    return Principal(
        device_subject(row["name"], key_id),
        PrincipalKind.DEVICE,
        frozenset({Role(row["role"])}),
        row["till_id"],
    )
