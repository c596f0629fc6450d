"""SAML sign-in against a real identity provider: pysaml2's own IdP (saml2.server.Server) runs in
the test process with RSA keys and self-signed certificates made here. The browser's round trip
is played by hand: the SP's redirect URL is parsed by the IdP, whose Response is posted back
(base64) to SamlSignIn.identity, as the ACS would."""

from __future__ import annotations

import base64
import re
import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server
from saml2.sigver import get_xmlsec_binary
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from lb_pipelines.ui.identity import Identity, SignInRefused
from lb_pipelines.ui.saml import SamlSignIn
from lb_pipelines.ui.settings import UiSettings

BASE = "http://127.0.0.1:3999"
SP_ENTITY = f"{BASE}/auth/saml/metadata"
ACS = f"{BASE}/auth/saml/acs"
IDP_ENTITY = "http://127.0.0.1:3998/idp/metadata"
IDP_SSO = "http://127.0.0.1:3998/idp/sso"
ANA = "ana@health.example.org"
OTHER = "https://other.example.org"


def key_pair(folder: Path, name: str) -> tuple[str, str]:
    """A fresh RSA key and a self-signed certificate for it, as PEM files."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = folder / f"{name}.key", folder / f"{name}.crt"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(key_file), str(cert_file)


def idp_config(keys: tuple[str, str] | None, sp_metadata: list[str]) -> IdPConfig:
    """The test IdP; keys=None makes one without a key, which signs nothing."""
    conf = {
        "entityid": IDP_ENTITY,
        "xmlsec_binary": get_xmlsec_binary(),
        "service": {
            "idp": {
                "endpoints": {"single_sign_on_service": [(IDP_SSO, BINDING_HTTP_REDIRECT)]},
                "policy": {"default": {"lifetime": {"minutes": 5}, "attribute_restrictions": None}},
                "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
            }
        },
        "metadata": {"local": sp_metadata} if sp_metadata else {},
        "signing_algorithm": SIG_RSA_SHA256,  # pysaml2 defaults to SHA-1; identity providers use SHA-256
        "digest_algorithm": DIGEST_SHA256,
    }
    if keys:
        conf["key_file"], conf["cert_file"] = keys
    return IdPConfig().load(conf)


@dataclass
class World:
    sp: SamlSignIn
    idp: Server  # signs with the key its metadata publishes
    stranger: Server  # same entity id, signs with a key the SP was never told about
    unsigned: Server  # same entity id, no key: signs nothing

    def sign_in(self, relay_state: str = "/runs") -> tuple[str, dict[str, str]]:
        """The SP's AuthnRequest, as the IdP reads it off the redirect: (request id, {id: relay state})."""
        request_id, url = self.sp.login_redirect(relay_state)
        query = parse_qs(urlsplit(url).query)
        assert url.startswith(IDP_SSO + "?")
        assert query["RelayState"] == [relay_state]
        request = self.idp.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
        assert request.message.id == request_id
        assert request.message.assertion_consumer_service_url == ACS
        return request_id, {request_id: relay_state}

    def response(self, idp: Server, request_id: str, audience=SP_ENTITY, destination=ACS, sign=True) -> str:
        """The IdP's Response for Ana, base64 as the browser posts it to the ACS."""
        xml = idp.create_authn_response(
            identity={"groups": ["LB Operators"], "name": ["Ana Lima"]},
            in_response_to=request_id,
            destination=destination,
            sp_entity_id=audience,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=ANA),
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"},
            sign_response=sign,
            sign_assertion=sign,
        )
        return base64.b64encode(str(xml).encode()).decode()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    folder = tmp_path_factory.mktemp("saml")
    trusted, untrusted = key_pair(folder, "idp"), key_pair(folder, "stranger")
    idp_metadata = folder / "idp-metadata.xml"
    idp_metadata.write_bytes(_bytes(create_metadata_string(None, config=idp_config(trusted, []))))
    settings = UiSettings(
        sign_in="saml",
        base_url=BASE,
        session_secret="x" * 32,
        session_minutes=60,
        role_claim="groups",
        role_of_group={"LB Operators": "operator"},
        audit_db=folder / "audit.sqlite",
        saml_idp_metadata=str(idp_metadata),
        saml_sp_entity_id=SP_ENTITY,
    )
    sp = SamlSignIn(settings)
    # another application registered with the same IdP, whose assertions must not work here
    other = SamlSignIn(replace(settings, base_url=OTHER, saml_sp_entity_id=f"{OTHER}/saml"))
    sp_metadata = [folder / "sp-metadata.xml", folder / "other-sp-metadata.xml"]
    sp_metadata[0].write_bytes(sp.metadata_xml())
    sp_metadata[1].write_bytes(other.metadata_xml())
    registered = [str(p) for p in sp_metadata]
    return World(
        sp=sp,
        idp=Server(config=idp_config(trusted, registered)),
        stranger=Server(config=idp_config(untrusted, registered)),
        unsigned=Server(config=idp_config(None, registered)),
    )


def _bytes(text) -> bytes:
    return text if isinstance(text, bytes) else text.encode()


def test_signed_response_signs_ana_in_with_her_groups(world):
    request_id, outstanding = world.sign_in()
    identity = world.sp.identity(world.response(world.idp, request_id), outstanding)
    assert identity == Identity(subject=ANA, name="Ana Lima", groups=("LB Operators",), via="saml")


def test_unsigned_response_is_refused(world):
    request_id, outstanding = world.sign_in()
    posted = world.response(world.unsigned, request_id, sign=False)
    assert b"Signature" not in base64.b64decode(posted)  # the IdP really signed nothing
    with pytest.raises(SignInRefused, match="not signed"):
        world.sp.identity(posted, outstanding)


def test_response_signed_with_a_key_not_in_the_metadata_is_refused(world):
    request_id, outstanding = world.sign_in()
    posted = world.response(world.stranger, request_id)
    assert len(re.findall(rb"<\w+:SignatureValue>", base64.b64decode(posted))) == 2  # response, assertion
    with pytest.raises(SignInRefused, match="signature is not valid"):
        world.sp.identity(posted, outstanding)


def test_altered_signed_response_is_refused(world):
    request_id, outstanding = world.sign_in()
    xml = base64.b64decode(world.response(world.idp, request_id))
    assert xml.count(b">LB Operators<") == 1
    forged = base64.b64encode(xml.replace(b">LB Operators<", b">LB Admins<")).decode()
    with pytest.raises(SignInRefused, match="signature is not valid"):
        world.sp.identity(forged, outstanding)


@pytest.mark.parametrize(
    "destination",
    [f"{OTHER}/auth/saml/acs", ACS],  # as issued to the other application; or only its audience differs
)
def test_response_for_another_service_is_refused(world, destination):
    request_id, outstanding = world.sign_in()
    posted = world.response(world.idp, request_id, audience=f"{OTHER}/saml", destination=destination)
    with pytest.raises(SignInRefused, match="not issued for this service"):
        world.sp.identity(posted, outstanding)


def test_response_to_a_request_not_started_here_is_refused(world):
    request_id, _ = world.sign_in()
    other_id, outstanding = world.sign_in()
    posted = world.response(world.idp, request_id)
    with pytest.raises(SignInRefused, match="does not answer a sign-in started here"):
        world.sp.identity(posted, outstanding)  # the session waits for other_id only
    with pytest.raises(SignInRefused, match="does not answer a sign-in started here"):
        world.sp.identity(posted, {})  # or for nothing (the id was used already)


def test_metadata_names_the_entity_id_and_the_acs(world):
    xml = world.sp.metadata_xml().decode()
    assert f'entityID="{SP_ENTITY}"' in xml
    assert f'Location="{ACS}"' in xml
    assert "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" in xml


async def _inner_ui(scope, receive, send):
    """Stands in for the Dagster UI behind the layer (the OIDC tests use the real one)."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"the UI"})


def test_through_the_layer_a_signed_assertion_starts_a_session_once(world):
    from starlette.testclient import TestClient

    from lb_pipelines.ui.layer import SignInLayer

    layer = SignInLayer(world.sp.settings, _inner_ui)
    browser = TestClient(layer, base_url=BASE)
    to_idp = browser.get("/auth/login?next=/runs", follow_redirects=False)
    assert to_idp.status_code == 302 and to_idp.headers["location"].startswith(IDP_SSO + "?")
    query = parse_qs(urlsplit(to_idp.headers["location"]).query)
    request_id = world.idp.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT).message.id
    posted = {"SAMLResponse": world.response(world.idp, request_id), "RelayState": query["RelayState"][0]}
    landed = browser.post("/auth/saml/acs", data=posted, follow_redirects=False)
    assert landed.status_code == 303 and landed.headers["location"] == "/runs"
    assert browser.get("/auth/whoami").json() == {"signed_in": True, "name": "Ana Lima", "role": "operator", "via": "saml"}
    assert browser.get("/runs").text == "the UI"

    replayed = TestClient(layer, base_url=BASE).post("/auth/saml/acs", data=posted, follow_redirects=False)
    assert replayed.status_code == 403 and "does not answer a sign-in started here" in replayed.text
    unsigned = TestClient(layer, base_url=BASE)
    query = parse_qs(urlsplit(unsigned.get("/auth/login", follow_redirects=False).headers["location"]).query)
    fresh_id = world.idp.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT).message.id
    refused = unsigned.post("/auth/saml/acs", data={"SAMLResponse": world.response(world.unsigned, fresh_id, sign=False)})
    assert refused.status_code == 403 and "SAML response is not signed" in refused.text
    outcomes = [(r["event"], r["outcome"]) for r in layer.audit.rows()]
    assert outcomes == [("sign_in", "ok"), ("sign_in", "refused"), ("sign_in", "refused")]
