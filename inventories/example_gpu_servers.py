"""Example inventory for a fleet of SSH GPU servers: groups, group data, host keys checked.

Not real hosts: the names are under example.net (reserved, RFC 2606). Copy this file to
``inventories/<yours>.py`` and put your servers in. Check it without connecting:

    pyinfra inventories/example_gpu_servers.py debug-inventory

Each top-level list or ``(hosts, group_data)`` tuple is a group; every host is also in the
group named after the file (``example_gpu_servers``). Host data wins over group data. Names
starting with ``_`` are not groups. Pick hosts with ``--limit`` (a group, a host, a glob):

    pyinfra inventories/example_gpu_servers.py deploys/gpu_server.py --limit h100
    pyinfra inventories/example_gpu_servers.py deploys/gpu_server.py --limit gpu-03.example.net
    pyinfra inventories/example_gpu_servers.py deploys/gpu_server.py --limit 'gpu-1*'
"""

# SSH login shared by the groups: a normal user with sudo (never root), key auth, host keys
# checked against a known_hosts file filled in advance (see README, "Fleets over SSH").
_LOGIN = {
    "ssh_user": "dlrig",
    "ssh_key": "~/.ssh/id_ed25519",
    "ssh_known_hosts_file": "~/.ssh/known_hosts_dlrig_fleet",
    "ssh_strict_host_key_checking": "yes",
    "_sudo": True,
}

# H100 servers (Ubuntu 24.04, CUDA in /usr/local/cuda).
h100 = (
    [
        "gpu-01.example.net",
        "gpu-02.example.net",
        ("gpu-03.example.net", {"ssh_port": 2222}),
    ],
    {**_LOGIN, "ldconfig_entries": {"cuda": ["/usr/local/cuda/lib64"]}},
)

# Older T4 servers (Ubuntu 22.04, CUDA 12.2).
t4 = (
    ["gpu-11.example.net", "gpu-12.example.net"],
    {**_LOGIN, "ldconfig_entries": {"cuda": ["/usr/local/cuda-12.2/lib64"]}},
)

# Short-lived cloud instances, recreated often with new host keys: this group opts out of
# strict host key checking, explicitly. Only for hosts you throw away.
scratch = (
    ["scratch-01.example.net"],
    {
        **_LOGIN,
        "ssh_strict_host_key_checking": "accept-new",
        "ssh_known_hosts_file": "~/.ssh/known_hosts_dlrig_scratch",
        "fleet_insecure_host_keys": True,
    },
)
