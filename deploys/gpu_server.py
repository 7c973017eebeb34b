"""Entry deploy for SSH GPU servers: ``pyinfra inventories/<yours>.py deploys/gpu_server.py``.

Servers: systemd, the pip stack in a venv, the Colab local runtime when added
(``profile_add: ["local_runtime"]``). Order and components: deploys/profile.py.
"""

from deploys.profile import run

run("server")
