"""APT facts pyinfra core lacks: which keys a keyring file really holds."""

from __future__ import annotations

from pyinfra.api import FactBase, QuoteString, StringCommand
from typing_extensions import override

from deploys.lib.apt_text import keyring_fingerprints


class KeyringFingerprints(FactBase[list[str]]):
    """
    Returns the primary-key fingerprints (upper-case hex) held by an OpenPGP keyring file.

    + path: the keyring, e.g. ``/etc/apt/keyrings/dlrig-cuda.gpg``

    An absent or unreadable file, or a host without ``gpg``, gives ``[]``.

    **Example:**

    .. code:: python

        host.get_fact(KeyringFingerprints, path="/etc/apt/keyrings/dlrig-cuda.gpg")
    """

    requires_command = "gpg"

    @override
    def default(self) -> list[str]:
        return []

    @override
    def command(self, path: str) -> StringCommand:
        return StringCommand(
            "LC_ALL=C gpg --batch --no-tty --show-keys --with-colons",
            QuoteString(path),
            "2>/dev/null || true",
        )

    @override
    def process(self, output: list[str]) -> list[str]:
        return keyring_fingerprints(output)
