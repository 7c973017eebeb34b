"""Entry deploy for Google Colab: ``pyinfra -y @local deploys/colab.py``.

Hosted Colab or a Colab-like VM: @local as root, no systemd, wiped on disconnect (set a build
cache on Drive to restore Boost and Caffe in seconds). Order and components: deploys/profile.py.
"""

from deploys.profile import run

run("colab")
