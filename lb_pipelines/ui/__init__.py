"""Sign-in for the Dagster UI: the webserver's application served behind a layer that signs people
in through the hospital's identity provider (OpenID Connect or SAML), maps their groups to a
role, refuses what the role may not do and records every change (docs/operations.md)."""
