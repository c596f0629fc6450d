"""SAML 2.0 sign-in (Web Browser SSO: AuthnRequest by HTTP-Redirect, Response by HTTP-POST), with pysaml2.

What a posted SAMLResponse must pass before anyone is signed in (pysaml2 does the checks; the
configuration below is what makes each one strict):

* signature: the Response or its Assertion is signed, and the signature verifies with a key from
  the identity provider's metadata, never with a certificate carried in the message itself
  (`only_use_keys_in_metadata`). Unsigned, wrongly signed or altered responses are refused.
* issuer: the assertion comes from the one identity provider of the metadata.
* audience and recipient: the assertion is for our entity id and was posted to our ACS URL, so an
  assertion the provider issued to another application cannot be replayed here.
* time: NotBefore / NotOnOrAfter of the conditions and of the bearer confirmation, with a minute
  of clock skew.
* InResponseTo: the response answers an AuthnRequest this browser session started
  (no unsolicited / IdP-initiated sign-in), so a response captured elsewhere cannot be injected
  into someone else's session. The caller removes the request id from the session once used, which
  makes each response good for a single sign-in.

Refusals are SignInRefused with a fixed reason: pysaml2's own messages may quote the assertion.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string
from saml2.response import StatusError, UnsolicitedResponse
from saml2.sigver import MissingKey, SignatureError, SigverError, get_xmlsec_binary
from saml2.validate import ResponseLifetimeExceed, ToEarly

from lb_pipelines.ui.identity import Identity, SignInRefused
from lb_pipelines.ui.settings import SettingsError, UiSettings

# pysaml2 logs whole responses (names, e-mail addresses, groups) at debug level and inside its error
# messages; the reason we raise is what the layer shows and audits instead.
logging.getLogger("saml2").setLevel(logging.CRITICAL)

NAME_ATTRIBUTES = ("name", "email", "mail", "uid")  # first present one is what the audit shows
CLOCK_SKEW_SECONDS = 60


class SamlSignIn:
    def __init__(self, settings: UiSettings):
        self.settings = settings
        try:
            xmlsec = get_xmlsec_binary()
        except SigverError:
            raise SettingsError("SAML sign-in needs the xmlsec1 program (Debian package xmlsec1)") from None
        source = settings.saml_idp_metadata
        scheme = urlsplit(source).scheme
        if scheme == "http":
            # the metadata carries the keys we trust: fetched without TLS, anyone on the path could swap them
            raise SettingsError("LB_SAML_IDP_METADATA must be a file or an https URL, not http")
        # read once here: after a key rollover at the provider the UI must be restarted
        metadata = {"remote": [{"url": source}]} if scheme == "https" else {"local": [source]}
        config = SPConfig()
        config.load(
            {
                "entityid": settings.saml_sp_entity_id,
                "xmlsec_binary": xmlsec,
                "metadata": metadata,
                "disable_ssl_certificate_validation": False,  # for the https metadata URL
                "only_use_keys_in_metadata": True,
                # keep attributes such as "groups" that have no entry in pysaml2's attribute maps
                "allow_unknown_attributes": True,
                "accepted_time_diff": CLOCK_SKEW_SECONDS,
                "service": {
                    "sp": {
                        "endpoints": {"assertion_consumer_service": [(settings.acs_url, BINDING_HTTP_POST)]},
                        "allow_unsolicited": False,
                        # Either signature is enough (both cover the assertion); providers differ in
                        # which one they sign by default (Entra ID: assertion; Keycloak: response).
                        # A signature that is present is always verified, whichever of these is set.
                        "want_assertions_or_response_signed": True,
                        "want_assertions_signed": False,
                        "want_response_signed": False,
                        "authn_requests_signed": False,
                    }
                },
            }
        )
        self._config = config
        self._client = Saml2Client(config=config)
        idps = list(self._client.metadata.identity_providers())
        if len(idps) != 1:
            # with several, any of them could sign people in; we want exactly the one configured
            raise SettingsError(f"LB_SAML_IDP_METADATA must describe one identity provider, not {len(idps)}")
        self.idp_entity_id = idps[0]

    def login_redirect(self, relay_state: str) -> tuple[str, str]:
        """(request id, URL of the provider's sign-in page carrying the AuthnRequest and relay_state)."""
        request_id, info = self._client.prepare_for_authenticate(
            entityid=self.idp_entity_id, relay_state=relay_state, binding=BINDING_HTTP_REDIRECT
        )
        return request_id, dict(info["headers"])["Location"]

    def identity(self, saml_response: str, outstanding: dict[str, str]) -> Identity:
        """Who the posted SAMLResponse signs in; SignInRefused unless every check of the module passes."""
        try:
            response = self._client.parse_authn_request_response(
                saml_response, BINDING_HTTP_POST, outstanding=outstanding
            )
        except UnsolicitedResponse:
            raise SignInRefused("SAML response does not answer a sign-in started here") from None
        except StatusError:
            raise SignInRefused("the identity provider did not sign the person in") from None
        except MissingKey:  # the issuer is not the provider of the metadata
            raise SignInRefused("SAML response is not from the configured identity provider") from None
        except (ToEarly, ResponseLifetimeExceed):
            raise SignInRefused("SAML assertion is expired or not yet valid") from None
        except SigverError as error:  # SignatureError is a SigverError
            unsigned = not isinstance(error, SignatureError) and "signed" in str(error)
            reason = "SAML response is not signed" if unsigned else "SAML response signature is not valid"
            raise SignInRefused(reason) from None
        except Exception as error:  # noqa: BLE001 - pysaml2 raises bare Exception for several checks
            if "AudienceRestriction" in str(error) or "recipient" in str(error):
                raise SignInRefused("SAML response was not issued for this service") from None
            raise SignInRefused("SAML response could not be read or verified") from None
        # None: destination not our ACS, or another check pysaml2 reports by returning nothing
        if response is None or response.assertion is None or response.name_id is None:
            raise SignInRefused("SAML response was not issued for this service")
        issuer = response.assertion.issuer.text.strip() if response.assertion.issuer is not None else ""
        if issuer != self.idp_entity_id:
            raise SignInRefused("SAML response is not from the configured identity provider")
        subject = (response.name_id.text or "").strip()
        if not subject:
            raise SignInRefused("SAML assertion names nobody")
        attributes = response.ava or {}
        name = next((str(attributes[a][0]) for a in NAME_ATTRIBUTES if attributes.get(a)), subject)
        groups = tuple(str(g) for g in attributes.get(self.settings.role_claim, ()))
        outstanding.pop(getattr(response, "in_response_to", None), None)  # answered: never again (replay)
        return Identity(subject=subject, name=name, groups=groups, via="saml")

    def metadata_xml(self) -> bytes:
        """Our SP metadata, for registering this UI with the identity provider."""
        xml = create_metadata_string(None, config=self._config)
        return xml if isinstance(xml, bytes) else xml.encode()
