"""Who signed in, as the layer keeps it in the session: no tokens, no secrets."""

from __future__ import annotations

from dataclasses import dataclass


class SignInRefused(Exception):
    """The identity provider's answer cannot be trusted or does not sign anyone in; the reason is
    safe to show and to audit (it never quotes a token or an assertion)."""


@dataclass(frozen=True)
class Identity:
    subject: str  # the provider's stable id of the person (OIDC `sub`, SAML NameID)
    name: str  # what the audit shows: preferred_username, e-mail or the subject
    groups: tuple[str, ...]  # the values of the role claim (groups or roles), as the provider sent them
    via: str  # "oidc" or "saml"
