"""Tenant CA generation: a CA the server accepts, a client certificate it signed, private keys 0600."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from imm_cli import certs

pytestmark = pytest.mark.unit


def test_generate_makes_a_ca_and_a_client_cert_signed_by_it(tmp_path: Path) -> None:
    made = certs.generate("team-a", tmp_path / "out")
    ca = x509.load_pem_x509_certificate(made.ca_cert.read_bytes())
    client = x509.load_pem_x509_certificate(made.client_cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "client"
    assert client.issuer == ca.subject
    public_key = ca.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    client.verify_directly_issued_by(ca)
    for key in (made.ca_key, made.client_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert base64.b64decode(made.ca_base64(), validate=True) == made.ca_cert.read_bytes()
