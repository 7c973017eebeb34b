"""APT sources: deb-src for the distribution's own sources, keyring'd third-party repositories."""

from __future__ import annotations

import io
from typing import Any

from pyinfra import host
from pyinfra.api import DeployError, OperationError, QuoteString, StringCommand, deploy, operation
from pyinfra.facts.files import FileContents
from pyinfra.operations import apt, files
from pyinfra.operations.util import any_changed

from deploys import apt_packages
from deploys.lib import data
from deploys.lib.apt_text import Repo, enable_deb_src, parse_repos
from facts.apt import KeyringFingerprints
from facts.batch import AS_LOGIN_USER, get_facts

PREFIX = "apt_sources_"

DEFAULTS: dict[str, Any] = {
    "apt_sources_deb_src": True,
    "apt_sources_deb_src_files": [
        "/etc/apt/sources.list",
        "/etc/apt/sources.list.d/debian.sources",
        "/etc/apt/sources.list.d/ubuntu.sources",
    ],
    "apt_sources_repos": [],
}

DOCS: dict[str, str] = {
    "apt_sources_deb_src": (
        "Enable deb-src for the distribution's own sources (apt-get source, build-dep)."
    ),
    "apt_sources_deb_src_files": (
        "Sources files whose deb lines get deb-src (one-line *.list or deb822 *.sources); "
        "absent files are skipped. Third-party repos are left alone: many have no source indices."
    ),
    "apt_sources_repos": (
        "Third-party repositories: list of {name, uri, suites, components, key_url or key_file, "
        "fingerprint, architectures?, deb_src?}; each gets a keyring holding only the pinned key "
        "and a deb822 file with Signed-By."
    ),
}

# Fetches a key, keeps only the pinned key (by full fingerprint) and installs it as a binary
# keyring. Arguments: source (URL or path on the host), fingerprint, destination.
_INSTALL_KEYRING = r"""
set -eu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
case "$1" in
  /*) cp "$1" "$work/key" ;;
  *) curl -fsSL --retry 3 -o "$work/key" "$1" ;;
esac
export GNUPGHOME="$work/home"
mkdir -m 0700 "$GNUPGHOME"
gpg --batch --quiet --import "$work/key" 2>/dev/null || true
if ! gpg --batch --list-keys --with-colons "$2" >/dev/null 2>&1; then
  found=$(gpg --batch --show-keys --with-colons "$work/key" 2>/dev/null \
    | awk -F: '$1 == "fpr" {print $10}' | tr '\n' ' ')
  echo "key from $1 does not hold fingerprint $2 (found: ${found:-no OpenPGP key})" >&2
  exit 1
fi
gpg --batch --export "$2" > "$work/keyring.gpg"
install -D -m 0644 "$work/keyring.gpg" "$3"
"""


@operation()
def deb_src(paths: list[str]):
    """
    Enable deb-src entries in APT sources files, each in its own format (one read for all).

    + paths: one-line ``*.list`` files (``# deb-src`` lines uncommented, missing ``deb-src``
      lines added after their ``deb`` line) and deb822 ``*.sources`` files (``Types: deb`` →
      ``Types: deb deb-src``); absent files are left alone

    **Example:**

    .. code:: python

        deb_src(paths=["/etc/apt/sources.list", "/etc/apt/sources.list.d/debian.sources"])
    """
    # Sources files are world-readable: read as the login user (facts.batch.AS_LOGIN_USER).
    contents = get_facts(host, [(FileContents, {"path": path}) for path in paths], **AS_LOGIN_USER)
    changed = []
    for path, lines in zip(paths, contents, strict=True):
        if lines is None:
            continue
        text = "".join(f"{line}\n" for line in lines)
        new = enable_deb_src(path, text)
        if new != text:
            changed.append(path)
            yield from files.put._inner(src=io.StringIO(new), dest=path, mode="644")
    if not changed:
        present = [path for path, lines in zip(paths, contents, strict=True) if lines is not None]
        host.noop(f"deb-src already enabled in {', '.join(present) or 'no sources file (absent)'}")


@operation()
def keyring(dest: str, fingerprint: str, key_url: str | None = None, key_file: str | None = None):
    """
    Install an APT keyring that holds exactly the key with the pinned fingerprint.

    + dest: keyring path, e.g. ``/etc/apt/keyrings/dlrig-cuda.gpg``
    + fingerprint: the key's full 40-hex-digit fingerprint; a key without it is refused
    + key_url: where the host downloads the key from (http, https or file URL)
    + key_file: or a key file on the controller, uploaded first

    **Example:**

    .. code:: python

        keyring(
            dest="/etc/apt/keyrings/dlrig-example.gpg",
            fingerprint="0123456789ABCDEF0123456789ABCDEF01234567",
            key_url="https://example.org/key.asc",
        )
    """
    if fingerprint in host.get_fact(KeyringFingerprints, path=dest):
        host.noop(f"{dest} holds key {fingerprint}")
        return
    if key_file:
        source = f"/var/lib/dlrig/keys/{dest.rsplit('/', 1)[-1]}.upload"
        yield from files.directory._inner(path="/var/lib/dlrig/keys", mode="700")
        yield from files.put._inner(src=key_file, dest=source, mode="600")
    elif key_url:
        source = key_url.removeprefix("file://")
    else:
        raise OperationError("keyring needs key_url or key_file")
    yield StringCommand(
        "sh",
        "-c",
        QuoteString(_INSTALL_KEYRING),
        "install-keyring",
        QuoteString(source),
        QuoteString(fingerprint),
        QuoteString(dest),
    )


def _repos() -> list[Repo]:
    try:
        return parse_repos(host.data.apt_sources_repos)
    except ValueError as e:
        raise DeployError(f"{host.name}: {e}") from None


@deploy("Configure APT sources", data_defaults=DEFAULTS)
def apt_sources() -> None:
    """
    Enable deb-src for the distribution's sources and add keyring'd third-party repositories.

    Data keys (see README): ``apt_sources_deb_src``, ``apt_sources_deb_src_files``,
    ``apt_sources_repos`` — a list of ``{name, uri, suites, components, key_url | key_file,
    fingerprint, architectures?, deb_src?}``. Each repository gets
    ``/etc/apt/keyrings/dlrig-<name>.gpg`` and ``/etc/apt/sources.list.d/dlrig-<name>.sources``
    with ``Signed-By``. ``apt-get update`` runs only when a source or keyring changed.

    **Example:**

    .. code:: python

        from deploys.apt_sources import apt_sources

        apt_sources()
    """
    data.check_host_data(host, DEFAULTS)
    repos = _repos()

    changes = []
    if host.data.apt_sources_deb_src and host.data.apt_sources_deb_src_files:
        changes.append(
            deb_src(
                name="Enable deb-src in the distribution's sources",
                paths=list(host.data.apt_sources_deb_src_files),
            )
        )

    if repos:
        apt_packages.present(
            name="Install the tools that fetch and check repository keys",
            packages=["gpg", "curl", "ca-certificates"],
            cache_time=86400,
        )
    for repo in repos:
        changes.append(
            keyring(
                name=f"Install keyring for {repo.name}",
                dest=repo.keyring,
                fingerprint=repo.fingerprint,
                key_url=repo.key_url,
                key_file=repo.key_file,
            )
        )
        changes.append(
            apt.sources_file(
                name=f"Add APT repository {repo.name}",
                filename=repo.sources_filename,
                types=["deb", "deb-src"] if repo.deb_src else ["deb"],
                uris=[repo.uri],
                suites=list(repo.suites),
                components=list(repo.components),
                architectures=list(repo.architectures) or None,
                signed_by=repo.keyring,
            )
        )

    if changes:
        apt.update(name="Update APT lists (sources changed)", _if=any_changed(*changes))
