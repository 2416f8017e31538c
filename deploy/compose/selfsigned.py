"""docker-compose.yml's inference certificate: a self-signed wildcard for *.<PLATFORM_DOMAIN>.

Usage: python selfsigned.py <output prefix>   (writes <prefix>.crt and <prefix>.key, keeps existing ones)
Runs in the product image, whose cryptography package makes it; a laptop's demo only.
"""

from __future__ import annotations

import datetime
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def main(prefix: str) -> None:
    crt, key_file = Path(f"{prefix}.crt"), Path(f"{prefix}.key")
    if crt.exists() and key_file.exists():
        return
    domain = os.environ.get("PLATFORM_DOMAIN", "imm.localhost")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"*.{domain}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(f"*.{domain}"), x509.DNSName(domain)]), False)
        .sign(key, hashes.SHA256())
    )
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


if __name__ == "__main__":
    main(sys.argv[1])
