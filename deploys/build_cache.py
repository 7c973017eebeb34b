"""Build artifact cache: build Boost and Caffe once, restore them everywhere else in seconds.

The Boost and Caffe build scripts call ``dlrig_cache.py`` (``files/build_cache/``, uploaded by
``install_tool``) on the host: before compiling they try to restore the build key's artifact
(checksum-verified, swapped in atomically); after a successful build they publish it (temp name,
then rename). The build key is recorded last either way, so a restored prefix is "done" exactly
like a built one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pyinfra import host, logger, state
from pyinfra.api import DeployError, QuoteString, StringCommand, deploy, operation
from pyinfra.api.host import Host
from pyinfra.operations import files

from deploys.lib import data
from facts.build_cache import BuildCacheEntries

PREFIX = "build_cache_"

DEFAULTS: dict[str, Any] = {
    "build_cache_dir": "auto",
    "build_cache_url": "",
    "build_cache_publish": True,
    "build_cache_shared": False,
    "build_cache_max_age_days": 0,
    "build_cache_max_size_mb": 0,
}

DOCS: dict[str, str] = {
    "build_cache_dir": (
        "Cache directory on the target (shared disk, mounted Drive); 'auto': on hosted Colab "
        "/content/drive/MyDrive/dlrig-cache when Drive is mounted, else off; '' off."
    ),
    "build_cache_url": (
        "Read-only cache URL (http(s):// or file://) tried after build_cache_dir, for fleets "
        "sharing one published cache."
    ),
    "build_cache_publish": "Publish each successful build into build_cache_dir.",
    "build_cache_shared": (
        "The cache is one store for every host of the run (a shared mount at build_cache_dir, "
        "or build_cache_url serving it): the first such host builds alone, then the others "
        "restore its artifact instead of compiling in parallel."
    ),
    "build_cache_max_age_days": "prune_cache removes artifacts older than this; 0 keeps all.",
    "build_cache_max_size_mb": (
        "prune_cache removes the oldest artifacts until the cache is under this size; 0: no cap."
    ),
}

TOOL_SOURCE = Path(__file__).resolve().parents[1] / "files" / "build_cache" / "dlrig_cache.py"
TOOL = "/opt/dlrig/bin/dlrig_cache.py"


def _check() -> None:
    url = host.data.get("build_cache_url", DEFAULTS["build_cache_url"]) or ""
    if url and not url.startswith(("http://", "https://", "file://")):
        raise DeployError(f"{host.name}: build_cache_url must be http(s):// or file://: {url!r}")
    cache = host.data.get("build_cache_dir", DEFAULTS["build_cache_dir"])
    if cache not in ("", "auto") and not str(cache).startswith("/"):
        raise DeployError(f"{host.name}: build_cache_dir must be absolute, 'auto' or ''")


def tool_args() -> list[str | QuoteString]:
    """Arguments naming the host's cache, for build scripts: ``--cache DIR --url URL``."""
    _check()
    cache = host.data.get("build_cache_dir", DEFAULTS["build_cache_dir"]) or ""
    url = host.data.get("build_cache_url", DEFAULTS["build_cache_url"]) or ""
    publish = host.data.get("build_cache_publish", DEFAULTS["build_cache_publish"])
    return [QuoteString(cache), QuoteString(url), QuoteString("1" if publish else "0")]


def _publishes(h: Host) -> bool:
    cache = h.data.get("build_cache_dir", DEFAULTS["build_cache_dir"])
    return bool(
        h.data.get("build_cache_shared", DEFAULTS["build_cache_shared"])
        and h.data.get("build_cache_publish", DEFAULTS["build_cache_publish"])
        and cache not in ("", "auto")
    )


def first_builder() -> Host | None:
    """The host that builds first for a shared cache: the run's first host that publishes.

    ``None`` when this host does not share its cache (``build_cache_shared`` off). The others
    sharing it plan their build after that host's, so they restore what it published. A host
    whose build key differs (another OS, compiler, CUDA) simply misses and builds itself.
    """
    if not host.data.get("build_cache_shared", DEFAULTS["build_cache_shared"]):
        return None
    # Found once per run (every host's Boost and Caffe deploys ask): a scan per call would be
    # quadratic in the fleet's size.
    real_state = state._get_module()
    if not hasattr(real_state, "_dlrig_first_builder"):
        real_state._dlrig_first_builder = next(
            (
                candidate
                for candidate in state.inventory
                if candidate in state.active_hosts
                and state.is_host_in_limit(candidate)
                and _publishes(candidate)
            ),
            None,
        )
    return real_state._dlrig_first_builder


def builds_first() -> bool:
    """Whether this host builds before the others that share its cache (see first_builder)."""
    builder = first_builder()
    return builder is not None and builder.name == host.name


def install_tool() -> None:
    """Upload the cache tool to the host (``/opt/dlrig/bin/dlrig_cache.py``); idempotent."""
    files.directory(name="Create dlrig's bin directory", path="/opt/dlrig/bin", mode="755")
    files.put(name="Upload the build cache tool", src=str(TOOL_SOURCE), dest=TOOL, mode="755")


@deploy("Build cache tool", data_defaults=DEFAULTS)
def build_cache() -> None:
    """
    Check the cache settings and put the cache tool on the host (the builds use it).

    Data keys (see README): ``build_cache_dir``, ``build_cache_url``, ``build_cache_publish``,
    ``build_cache_shared``.

    **Example:**

    .. code:: python

        from deploys.build_cache import build_cache

        build_cache()
    """
    data.check_host_data(host, DEFAULTS)
    _check()
    install_tool()


def _cache_dir() -> str:
    cache = host.data.build_cache_dir
    if cache == "auto":
        return "/content/drive/MyDrive/dlrig-cache"
    return cache


@deploy("List the build cache", data_defaults=DEFAULTS)
def list_cache() -> None:
    """
    Print what the host's build cache directory holds (changes nothing).

    **Example:**

    .. code:: shell

        pyinfra -y my_servers.py deploys.build_cache.list_cache --data build_cache_dir=/srv/cache
    """
    data.check_host_data(host, DEFAULTS)
    _check()
    cache = _cache_dir()
    items = host.get_fact(BuildCacheEntries, cache=cache) if cache else []
    lines = [f"{host.name}: build cache {cache or '(off)'}: {len(items)} artifact(s)"]
    for item in items:
        lines.append(
            f"  {item['name']:<8} {item['build_key'][:16]}  {item['size'] / 1e6:8.1f} MB  "
            f"{item['created_at']}"
        )
    logger.info("\n".join(lines))


def select_prune(
    items: list[dict[str, Any]], now: float, max_age_days: float, max_size_mb: float
) -> list[str]:
    """Artifact dirs to remove: older than the age limit, then oldest first until under size."""
    keep = sorted(items, key=lambda i: i["mtime"])
    remove = []
    if max_age_days:
        remove = [i["dir"] for i in keep if now - i["mtime"] > max_age_days * 86400]
        keep = [i for i in keep if i["dir"] not in remove]
    if max_size_mb:
        while keep and sum(i["size"] for i in keep) > max_size_mb * 1024 * 1024:
            remove.append(keep.pop(0)["dir"])
    return remove


@operation()
def pruned(cache: str, max_age_days: float, max_size_mb: float):
    """
    Remove old artifacts from a cache directory: by age, then oldest first by total size.

    + cache: the cache directory on the host
    + max_age_days: remove artifacts older than this (0: no age limit)
    + max_size_mb: then remove the oldest until the total is under this (0: no cap)
    """
    items = host.get_fact(BuildCacheEntries, cache=cache)
    remove = select_prune(items, time.time(), max_age_days, max_size_mb)
    if not remove:
        host.noop(f"build cache {cache} is within its limits")
        return
    for path in remove:
        yield StringCommand("rm", "-rf", QuoteString(path))


@deploy("Prune the build cache", data_defaults=DEFAULTS)
def prune_cache() -> None:
    """
    Prune the host's build cache directory by ``build_cache_max_age_days`` and ``_max_size_mb``.

    **Example:**

    .. code:: shell

        pyinfra -y inv.py deploys.build_cache.prune_cache --data build_cache_max_size_mb=20000
    """
    data.check_host_data(host, DEFAULTS)
    _check()
    cache = _cache_dir()
    if cache:
        pruned(
            name=f"Prune build cache {cache}",
            cache=cache,
            max_age_days=host.data.build_cache_max_age_days,
            max_size_mb=host.data.build_cache_max_size_mb,
        )
