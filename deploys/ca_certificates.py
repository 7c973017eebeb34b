"""Extra CA certificates on targets: TLS-intercepting proxies, private registries and mirrors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pyinfra import host
from pyinfra.api import DeployError, deploy, operation

from deploys import apt_packages
from deploys.lib import data
from deploys.managed import files_exactly

PREFIX = "ca_certificates_"

DEFAULTS: dict[str, Any] = {
    "ca_certificates_files": [],
}

DOCS: dict[str, str] = {
    "ca_certificates_files": (
        "PEM CA certificates on the controller to trust on targets (corporate proxies that "
        "intercept TLS, private mirrors); installed under /usr/local/share/ca-certificates/dlrig/ "
        "into the system bundle, which dlrig's pip and curl steps use. Dropped files are removed."
    ),
}

CERT_DIR = "/usr/local/share/ca-certificates/dlrig"
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----\s+[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----")


def load_certificates(paths: list[str]) -> dict[str, str]:
    """Read and check the controller-side certificates: file name (``.crt``) → PEM text.

    + paths: PEM files; each must hold at least one certificate and nothing private
    """
    out: dict[str, str] = {}
    for path in paths:
        p = Path(path).expanduser()
        if not p.is_file():
            raise DeployError(f"ca_certificates_files: {path} is not a file on the controller")
        text = p.read_text()
        if "PRIVATE KEY" in text:
            raise DeployError(f"ca_certificates_files: {path} holds a private key; refusing it")
        if not _PEM.search(text):
            raise DeployError(f"ca_certificates_files: {path} holds no PEM certificate")
        name = re.sub(r"[^A-Za-z0-9._-]", "_", p.stem) + ".crt"
        if name in out:
            raise DeployError(f"ca_certificates_files: two files named {p.stem}")
        out[name] = text if text.endswith("\n") else text + "\n"
    return out


@operation()
def trusted(wanted: dict[str, str]):
    """
    Make dlrig's extra CA certificates exactly ``wanted``; rebuild the system bundle
    (``update-ca-certificates --fresh``) when one was added, changed or removed.

    + wanted: file name (``*.crt``) → PEM text, installed in ``CERT_DIR``

    **Example:**

    .. code:: python

        trusted(wanted={"corp-proxy.crt": pem})
    """
    changed = False
    for command in files_exactly._inner(directory=CERT_DIR, pattern="*.crt", wanted=wanted):
        changed = True
        yield command
    if changed:
        yield "update-ca-certificates --fresh"


@deploy("Trust extra CA certificates", data_defaults=DEFAULTS)
def ca_certificates() -> None:
    """
    Add the controller's extra CA certificates to each target's system trust store.

    Data keys (see README): ``ca_certificates_files``. ``update-ca-certificates`` runs only
    when a certificate was added, changed or removed.

    **Example:**

    .. code:: python

        from deploys.ca_certificates import ca_certificates

        ca_certificates()
    """
    data.check_host_data(host, DEFAULTS)
    certificates = load_certificates(list(host.data.ca_certificates_files))
    if certificates:
        apt_packages.present(
            name="Install ca-certificates",
            packages=["ca-certificates"],
            cache_time=86400,
        )
    trusted(name="Install extra CA certificates", wanted=certificates)
