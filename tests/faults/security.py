"""Security set-ups for the fault suite: the shipped ACL file with test passwords, and
TLS certificates generated at run time (with `openssl`)."""

from __future__ import annotations

import re
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.procs import REPO

ACL_FILE = REPO / "controller" / "redis-acl.conf"
ROLES = ("producer", "worker", "controller")
_PASSWORD = re.compile(r" [>#]\S+")


def acl_with_passwords(directory: Path) -> tuple[Path, dict[str, str]]:
    """Copy the shipped ACL file with a fresh password per role (as a deployment must
    set them); return the copy and the passwords by role. The copy leaves out the
    file's `user default off`: the harness itself reads Redis as the default user."""
    passwords = {role: secrets.token_hex(12) for role in ROLES}
    lines = []
    for line in ACL_FILE.read_text().splitlines():
        name = line.split()[1]
        if name in passwords:
            lines.append(_PASSWORD.sub(f" >{passwords[name]}", line, count=1))
    directory.mkdir(parents=True, exist_ok=True)
    copy = directory / "users.acl"
    copy.write_text("\n".join(lines) + "\n")
    return copy, passwords


def role_url(role: str, password: str, port: int, host: str = "127.0.0.1") -> str:
    """The URL a process of `role` connects with."""
    return f"redis://{role}:{password}@{host}:{port}/0"


def _openssl(*argv: str) -> None:
    subprocess.run(["openssl", *argv], check=True, capture_output=True, timeout=60)


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert))  # fmt: skip
    return key, cert


@dataclass(frozen=True)
class Certificates:
    """A CA, a server certificate it signed (for 127.0.0.1), and an unrelated CA."""

    ca: Path
    server_cert: Path
    server_key: Path
    wrong_ca: Path


def make_certificates(directory: Path) -> Certificates:
    """Generate the test PKI in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca = _ca(directory, "fleetscale-test-ca")
    _, wrong_ca = _ca(directory, "unrelated-ca")
    key, csr, cert = (directory / f"server.{ext}" for ext in ("key", "csr", "pem"))
    ext = directory / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
             "-keyout", str(key), "-out", str(csr))  # fmt: skip
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
    return Certificates(ca, cert, key, wrong_ca)


def tls_args(certs: Certificates, tls_port: int) -> tuple[str, ...]:
    """`redis-server` arguments for a TLS port that needs no client certificate."""
    return ("--tls-port", str(tls_port), "--tls-cert-file", str(certs.server_cert),
            "--tls-key-file", str(certs.server_key), "--tls-ca-cert-file", str(certs.ca),
            "--tls-auth-clients", "no")  # fmt: skip


def tls_url(port: int, ca: Path) -> str:
    """A `rediss://` URL trusting `ca`."""
    return f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}"
