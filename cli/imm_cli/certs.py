"""A tenant's client-certificate authority, made locally with ``cryptography`` (no openssl shell-out).

The original ``create_tenant_certs.sh`` made a CA and a client certificate with ``CN=client`` (the
default ``subjectName`` of an endpoint); the tenant's ``cert`` is the base64 of the CA's PEM, and the
inference Ingress then accepts only clients signed by it. The private keys are written 0600 and
never leave the machine.
"""

from __future__ import annotations

import base64
import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
CLIENT_DAYS = 825


@dataclass(frozen=True)
class TenantCerts:
    directory: Path
    ca_cert: Path
    ca_key: Path
    client_cert: Path
    client_key: Path

    def ca_base64(self) -> str:
        """The value of the tenant's ``cert`` field."""
        return base64.b64encode(self.ca_cert.read_bytes()).decode("ascii")


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def generate(tenant: str, directory: Path, *, subject: str = "client") -> TenantCerts:
    """A CA ``CN=<tenant> client CA`` and a client certificate ``CN=<subject>`` signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{tenant} client CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(ca_name)
        .public_key(client_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CLIENT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    certs = TenantCerts(
        directory=directory,
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
    )
    _write(certs.ca_key, _key_pem(ca_key), 0o600)
    _write(certs.client_key, _key_pem(client_key), 0o600)
    _write(certs.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(certs.client_cert, client_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return certs
