"""The sign-in layer's settings, from environment variables only (secrets by the name of the
variable that holds them). See docs/operations.md for what each identity provider needs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from lb_pipelines import settings as paths

ROLES = ("viewer", "operator", "admin")  # each includes what the one before may do


class SettingsError(ValueError):
    pass


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def parse_role_map(text: str) -> dict[str, str]:
    """`admin=LB Admins;operator=LB Operators,Schedulers;viewer=LB Viewers` → group → role."""
    groups: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        role, sep, names = part.partition("=")
        role = role.strip().lower()
        if not sep or role not in ROLES:
            raise SettingsError(f"LB_UI_ROLES: {part!r} is not <role>=<group>[,<group>...] with a role of {', '.join(ROLES)}")
        for name in filter(None, (n.strip() for n in names.split(","))):
            groups[name] = role
    if not groups:
        raise SettingsError("LB_UI_ROLES maps no group to a role: nobody could use the UI")
    return groups


@dataclass(frozen=True)
class UiSettings:
    sign_in: str  # "" (none: loopback only), "oidc" or "saml"
    base_url: str  # how people reach the UI, e.g. https://lb.health.example.org
    session_secret: str = field(repr=False)
    session_minutes: int
    role_claim: str
    role_of_group: dict[str, str]
    audit_db: Path
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = field(default="", repr=False)
    oidc_scopes: str = "openid profile email"
    saml_idp_metadata: str = ""  # a file path or an https URL of the IdP's metadata
    saml_sp_entity_id: str = ""

    @property
    def secure_cookies(self) -> bool:
        return urlsplit(self.base_url).scheme == "https"

    @property
    def redirect_uri(self) -> str:
        return f"{self.base_url}/auth/callback"

    @property
    def acs_url(self) -> str:
        return f"{self.base_url}/auth/saml/acs"


def load() -> UiSettings:
    """The settings in the environment; a missing or wrong value is a SettingsError naming the variable."""
    sign_in = _env("LB_UI_SIGN_IN").lower()
    if sign_in not in ("", "oidc", "saml"):
        raise SettingsError(f"LB_UI_SIGN_IN={sign_in!r}: use oidc, saml, or leave it unset")
    base_url = _env("LB_UI_BASE_URL").rstrip("/")
    audit = Path(_env("LB_UI_AUDIT_DB") or paths.dagster_home() / "audit.sqlite")
    if not sign_in:
        return UiSettings("", base_url, "", 0, "", {}, audit)
    missing = [v for v in ("LB_UI_BASE_URL", "LB_UI_SESSION_SECRET", "LB_UI_ROLES") if not _env(v)]
    if sign_in == "oidc":
        missing += [v for v in ("LB_OIDC_ISSUER", "LB_OIDC_CLIENT_ID") if not _env(v)]
        secret_var = _env("LB_OIDC_CLIENT_SECRET_ENV", "LB_OIDC_CLIENT_SECRET")
        if not _env(secret_var):
            missing.append(secret_var)
    if sign_in == "saml" and not _env("LB_SAML_IDP_METADATA"):
        missing.append("LB_SAML_IDP_METADATA")
    if missing:
        raise SettingsError(f"sign-in {sign_in} needs {', '.join(missing)} in the environment")
    if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).netloc:
        raise SettingsError(f"LB_UI_BASE_URL={base_url!r} is not an http(s) URL")
    if len(_env("LB_UI_SESSION_SECRET")) < 32:
        raise SettingsError("LB_UI_SESSION_SECRET must be at least 32 characters (e.g. `openssl rand -hex 32`)")
    try:
        minutes = int(_env("LB_UI_SESSION_MINUTES", "480"))
    except ValueError:
        raise SettingsError("LB_UI_SESSION_MINUTES must be a whole number of minutes") from None
    return UiSettings(
        sign_in=sign_in,
        base_url=base_url,
        session_secret=_env("LB_UI_SESSION_SECRET"),
        session_minutes=minutes,
        role_claim=_env("LB_UI_ROLE_CLAIM", "groups"),
        role_of_group=parse_role_map(_env("LB_UI_ROLES")),
        audit_db=audit,
        oidc_issuer=_env("LB_OIDC_ISSUER").rstrip("/"),
        oidc_client_id=_env("LB_OIDC_CLIENT_ID"),
        oidc_client_secret=_env(_env("LB_OIDC_CLIENT_SECRET_ENV", "LB_OIDC_CLIENT_SECRET")),
        oidc_scopes=_env("LB_OIDC_SCOPES", "openid profile email"),
        saml_idp_metadata=_env("LB_SAML_IDP_METADATA"),
        saml_sp_entity_id=_env("LB_SAML_SP_ENTITY_ID") or f"{base_url}/auth/saml/metadata",
    )
