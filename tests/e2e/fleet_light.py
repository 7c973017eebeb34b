"""The server entry deploy's light profile, for the fleet tests and bench/fleet.py.

Stands in for ``deploys/gpu_server.py`` with its light profile until that entry exists: the
fleet checks first, then the steps that need no GPU and no long build — APT sources, the host
compiler, linker paths, datasets. Swap the tests to ``deploys/gpu_server.py`` by changing
``LIGHT_PROFILE`` in tests/e2e/test_fleet.py and bench/fleet.py.
"""

from deploys.apt_sources import apt_sources
from deploys.datasets import datasets
from deploys.fleet import fleet
from deploys.ldconfig import ldconfig
from deploys.toolchain import toolchain

fleet()
apt_sources()
toolchain()
ldconfig()
datasets()
