"""OpenID Connect relying party: discovery, JWKS with rotation, authorization URL, code exchange, ID token checks.

One generic implementation for every provider (Entra ID, Okta, Keycloak, Google, any OIDC issuer). Authlib
builds the authorization request (PKCE S256) and the token request and validates the ID token claims
(``CodeIDToken``: iss, aud, exp, iat, nonce, azp, at_hash); joserfc (Authlib's JOSE library) verifies the
signature against the issuer's JWKS.

Caching: the discovery document and the JWKS are kept per issuer for ``ttl`` seconds. An ID token signed with a
key id the cached JWKS does not hold makes one forced refetch (the provider rotated its keys); forced refetches
of one issuer are at most one per ``refetch_interval`` seconds, so tokens naming random key ids cannot turn
logins into a stream of JWKS requests. Every URL fetched (issuer, token endpoint, JWKS) first passes the
caller's URL guard (the SSRF guard).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry, extract_compact

from promptops.errors import ProblemError, ValidationProblem

UrlGuard = Callable[[str], Awaitable[None]]

# Asymmetric algorithms only: "none" and HMAC (keyed with the client secret) are refused.
SIGNING_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
MAX_DOCUMENT_BYTES = 512 * 1024
HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class SsoProblem(ProblemError):
    status = 401
    code = "sso_failed"
    title = "Single sign-on failed"


class IdpUnavailable(ProblemError):
    status = 502
    code = "sso_idp_unavailable"
    title = "The identity provider could not be reached"


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None
    algorithms: tuple[str, ...]
    auth_methods: tuple[str, ...]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)


@dataclass
class _Entry:
    metadata: ProviderMetadata
    fetched_at: float
    jwks: KeySet | None = None
    kids: frozenset[str] = frozenset()
    jwks_fetched_at: float = 0.0
    forced_at: float = -1e18
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    nonce: str
    code_verifier: str


def well_known_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


class OidcClient:
    """The relying party's HTTP side, with per-issuer caches. One per process (held by the app)."""

    def __init__(self, *, ttl: float = 3600.0, refetch_interval: float = 5.0, clock_skew: int = 60) -> None:
        self.ttl = ttl
        self.refetch_interval = refetch_interval
        self.clock_skew = clock_skew
        self._entries: dict[str, _Entry] = {}

    async def _get_json(self, url: str, guard: UrlGuard, what: str) -> dict[str, Any]:
        await guard(url)
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False) as client:
                response = await client.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise IdpUnavailable(f"Could not fetch the {what} from {url}: {type(exc).__name__}")
        if response.status_code != 200:
            raise IdpUnavailable(f"The {what} at {url} answered HTTP {response.status_code}")
        if len(response.content) > MAX_DOCUMENT_BYTES:
            raise IdpUnavailable(f"The {what} at {url} is larger than {MAX_DOCUMENT_BYTES} bytes")
        try:
            document = response.json()
        except ValueError:
            raise IdpUnavailable(f"The {what} at {url} is not JSON")
        if not isinstance(document, dict):
            raise IdpUnavailable(f"The {what} at {url} is not a JSON object")
        return document

    async def metadata(self, issuer: str, guard: UrlGuard, *, fresh: bool = False) -> ProviderMetadata:
        """The issuer's discovery document (cached); its ``issuer`` must equal ``issuer`` exactly."""
        entry = self._entries.get(issuer)
        if entry is not None and not fresh and time.monotonic() - entry.fetched_at < self.ttl:
            return entry.metadata
        document = await self._get_json(well_known_url(issuer), guard, "discovery document")
        if document.get("issuer") != issuer:
            raise ValidationProblem(
                f"The discovery document of {issuer} names issuer {document.get('issuer')!r}; the issuer URL must "
                "match it exactly (for Entra ID use the tenant's v2.0 issuer, not /common)",
                code="sso_issuer_mismatch",
            )
        missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not document.get(k)]
        if missing:
            raise ValidationProblem(
                f"The discovery document of {issuer} lacks {', '.join(missing)}",
                code="sso_discovery_incomplete",
            )
        offered = document.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = tuple(a for a in offered if a in SIGNING_ALGORITHMS)
        if not algorithms:
            raise ValidationProblem(
                f"{issuer} signs ID tokens only with {offered}; an asymmetric algorithm (e.g. RS256) is required",
                code="sso_unsupported_algorithm",
            )
        metadata = ProviderMetadata(
            issuer=issuer,
            authorization_endpoint=str(document["authorization_endpoint"]),
            token_endpoint=str(document["token_endpoint"]),
            jwks_uri=str(document["jwks_uri"]),
            end_session_endpoint=document.get("end_session_endpoint"),
            algorithms=algorithms,
            auth_methods=tuple(
                document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
            ),
            raw=document,
        )
        if entry is None or entry.metadata.jwks_uri != metadata.jwks_uri:
            self._entries[issuer] = _Entry(metadata=metadata, fetched_at=time.monotonic())
        else:
            entry.metadata = metadata
            entry.fetched_at = time.monotonic()
        return metadata

    async def _key_set(self, issuer: str, guard: UrlGuard, kid: str | None) -> KeySet:
        await self.metadata(issuer, guard)
        entry = self._entries[issuer]
        async with entry.lock:
            now = time.monotonic()
            stale = entry.jwks is None or now - entry.jwks_fetched_at >= self.ttl
            unknown = kid is not None and entry.jwks is not None and kid not in entry.kids
            if unknown and not stale and now - entry.forced_at < self.refetch_interval:
                raise SsoProblem(
                    f"The ID token names signing key {kid!r}, which {issuer} does not publish",
                    code="sso_unknown_key",
                )
            if stale or unknown:
                if unknown:
                    entry.forced_at = now
                document = await self._get_json(entry.metadata.jwks_uri, guard, "JWKS")
                try:
                    entry.jwks = KeySet.import_key_set(document)  # type: ignore[arg-type]
                except (JoseError, ValueError, KeyError, TypeError) as exc:
                    raise IdpUnavailable(f"The JWKS of {issuer} could not be read: {exc}")
                entry.kids = frozenset(str(k.get("kid")) for k in document.get("keys", []) if k.get("kid"))
                entry.jwks_fetched_at = now
            assert entry.jwks is not None
            if kid is not None and kid not in entry.kids:
                raise SsoProblem(
                    f"The ID token names signing key {kid!r}, which {issuer} does not publish",
                    code="sso_unknown_key",
                )
            return entry.jwks

    def authorization_request(
        self, metadata: ProviderMetadata, client_id: str, redirect_uri: str, scopes: list[str], **extra: str
    ) -> AuthorizationRequest:
        state, nonce, verifier = generate_token(43), generate_token(43), generate_token(64)
        url = prepare_grant_uri(
            metadata.authorization_endpoint,
            client_id=client_id,
            response_type="code",
            redirect_uri=redirect_uri,
            scope=" ".join(scopes),
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
            **extra,
        )
        return AuthorizationRequest(url=url, state=state, nonce=nonce, code_verifier=verifier)

    async def exchange_code(
        self,
        metadata: ProviderMetadata,
        guard: UrlGuard,
        *,
        client_id: str,
        client_secret: str,
        code: str,
        redirect_uri: str,
        code_verifier: str,
    ) -> dict[str, Any]:
        """The token endpoint's answer for an authorization code (client_secret_basic, else client_secret_post)."""
        await guard(metadata.token_endpoint)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        auth: httpx.BasicAuth | None = None
        if (
            "client_secret_basic" in metadata.auth_methods
            or "client_secret_post" not in metadata.auth_methods
        ):
            # RFC 6749 §2.3.1: the id and secret are form-urlencoded before the Basic encoding.
            from urllib.parse import quote

            auth = httpx.BasicAuth(quote(client_id, safe=""), quote(client_secret, safe=""))
        else:
            form.update(client_id=client_id, client_secret=client_secret)
        headers = {"Accept": "application/json"}
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False) as client:
                response = await (
                    client.post(metadata.token_endpoint, data=form, auth=auth, headers=headers)
                    if auth is not None
                    else client.post(metadata.token_endpoint, data=form, headers=headers)
                )
        except httpx.HTTPError as exc:
            raise IdpUnavailable(f"Could not reach the token endpoint: {type(exc).__name__}")
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict):
            error = body.get("error", "") if isinstance(body, dict) else ""
            raise SsoProblem(
                f"The identity provider refused the authorization code (HTTP {response.status_code}"
                + (f", {error}" if error else "")
                + ")",
                code="sso_code_rejected",
            )
        if not isinstance(body.get("id_token"), str):
            raise SsoProblem(
                "The token response carries no ID token (is 'openid' in the scopes?)", code="sso_no_id_token"
            )
        return body

    async def validate_id_token(
        self,
        metadata: ProviderMetadata,
        guard: UrlGuard,
        id_token: str,
        *,
        client_id: str,
        nonce: str,
        access_token: str | None,
    ) -> dict[str, Any]:
        """Verify the signature (JWKS, refetched on an unknown key id) and the claims; returns the claims."""
        try:
            header = extract_compact(id_token.encode()).headers()
        except (JoseError, ValueError) as exc:
            raise SsoProblem(f"The ID token is not a compact JWS: {exc}", code="sso_token_invalid")
        alg = header.get("alg")
        if alg not in metadata.algorithms:
            raise SsoProblem(
                f"The ID token is signed with {alg!r}; expected one of {', '.join(metadata.algorithms)}",
                code="sso_token_invalid",
            )
        kid = header.get("kid")
        keys = await self._key_set(metadata.issuer, guard, str(kid) if kid is not None else None)
        try:
            token = jwt.decode(id_token, keys, registry=JWSRegistry(algorithms=[alg]))
        except JoseError as exc:
            raise SsoProblem(f"The ID token signature does not verify: {exc.error}", code="sso_token_invalid")
        params: dict[str, Any] = {"nonce": nonce, "client_id": client_id}
        if access_token:
            params["access_token"] = access_token
        claims = CodeIDToken(
            token.claims,
            token.header,
            {
                "iss": {"essential": True, "value": metadata.issuer},
                "aud": {"essential": True, "value": client_id},
            },
            params,
        )
        try:
            claims.validate(leeway=self.clock_skew)
        except ExpiredTokenError:
            raise SsoProblem("The ID token has expired", code="sso_token_expired")
        except MissingClaimError as exc:
            raise SsoProblem(f"The ID token lacks the claim(s) {exc.claim}", code="sso_token_invalid")
        except InvalidClaimError as exc:
            name = exc.claim
            code = {
                "aud": "sso_wrong_audience",
                "iss": "sso_wrong_issuer",
                "nonce": "sso_nonce_mismatch",
            }.get(name, "sso_token_invalid")
            raise SsoProblem(f"The ID token's {name!r} claim is not valid: {exc.description}", code=code)
        return dict(claims)
