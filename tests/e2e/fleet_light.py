"""The server entry deploy's light profile, for the fleet tests and bench/fleet.py.

Stands in for ``deploys/gpu_server.py`` with its light profile until that entry exists: the
fleet checks first, then the system steps that need no GPU and no long build. Swap the tests
to ``deploys/gpu_server.py`` by changing ``LIGHT_PROFILE`` in tests/e2e/test_fleet.py.
"""

from deploys.apt_sources import apt_sources
from deploys.fleet import fleet
from deploys.ldconfig import ldconfig

fleet()
apt_sources()
ldconfig()
