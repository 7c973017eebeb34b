"""e2e: extra CA certificates land in the target's system bundle, and leave it again."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

DEPLOY = "deploys.ca_certificates.ca_certificates"


def _make_ca(tmp_path: Path, name: str) -> Path:
    cert = tmp_path / f"{name}.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            "-keyout",
            str(tmp_path / f"{name}.key"),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert


def _bundle(target) -> str:
    return (target.root.path / "etc/ssl/certs/ca-certificates.crt").read_text()


def test_extra_ca_is_trusted_then_removed(ssh_host, converge, tmp_path):
    cert = _make_ca(tmp_path, "dlrig-test-proxy-ca")
    pem = cert.read_text().strip()

    converge(ssh_host, DEPLOY, {"ca_certificates_files": [str(cert)]})

    installed = ssh_host.testinfra().file(
        "/usr/local/share/ca-certificates/dlrig/dlrig-test-proxy-ca.crt"
    )
    assert installed.exists and installed.mode == 0o644
    assert pem in _bundle(ssh_host)

    converge(ssh_host, DEPLOY, {"ca_certificates_files": []})
    assert not installed.exists
    assert pem not in _bundle(ssh_host)


def test_private_key_is_refused_before_any_change(debian_root, run_pyinfra, tmp_path):
    _make_ca(tmp_path, "leaky")
    bundle = _bundle(debian_root)

    run = run_pyinfra(debian_root, DEPLOY, {"ca_certificates_files": [str(tmp_path / "leaky.key")]})

    assert run.returncode != 0
    assert "holds a private key" in run.output
    assert _bundle(debian_root) == bundle
