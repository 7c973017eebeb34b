"""e2e: Caffe built from source on a Debian 12 root, CPU_ONLY; pycaffe forward pass.

Source: BVLC Caffe 1.0 from Debian's bullseye source package (the SSD fork's upstream; it has
no SSD layers, so the forward pass uses a small conv net), or the real weiliu89/caffe fork
when ``DLRIG_CAFFE_SSD_MIRROR`` names a local mirror (then the SSD-style net, whose
DetectionOutput must give 1 x 1 x 10 x 7 detections).
"""

from __future__ import annotations

import json
import shutil

import pytest

from deploys.caffe import KEY_FILE, LOG_FILE, PTH_NAME
from deploys.lib.caffe import REPO
from tests.e2e import caffe_source

pytestmark = [pytest.mark.e2e, pytest.mark.build]

REMOTE_REPO = "/srv/dlrig-caffe.git"
PREFIX = "/opt/dlrig/caffe"


def _with_apt_cache(target) -> None:
    # Reruns reuse the build dependencies' .debs (about 200 MB).
    caffe_source.APT_CACHE.mkdir(parents=True, exist_ok=True)
    (caffe_source.APT_CACHE / "partial").mkdir(exist_ok=True)
    target.root.bind(str(caffe_source.APT_CACHE), "/var/cache/apt/archives", read_only=False)
    # The base root's apt deletes .debs after installing; keep them for the next run.
    (target.root.path / "etc/apt/apt.conf.d/99dlrig-keep-debs").write_text(
        'Binary::apt::APT::Keep-Downloaded-Packages "true";\n'
    )


def _forward(target, prototxt: str) -> dict:
    for name in (prototxt, "forward_check.py"):
        shutil.copy(REPO / "files/caffe" / name, target.root.path / "tmp" / name)
    out = target.root.run(f"cd / && python3 /tmp/forward_check.py /tmp/{prototxt}").stdout
    return json.loads(out.strip().splitlines()[-1])


def _converge_and_verify(target, converge, repo, commit, ssd: bool) -> None:
    _with_apt_cache(target)
    target.root.bind(str(repo), REMOTE_REPO)
    data = {
        "caffe_repo": f"file://{REMOTE_REPO}",
        "caffe_ref": commit,
        "caffe_prefix": PREFIX,
    }
    first, _ = converge(target, "deploys.caffe.caffe", data)
    assert "Build and install Caffe (when the build key changed)" in first.changed
    host = target.testinfra()

    # The tools and the library: caffe.bin runs, libcaffe is found through ld.so.conf.d.
    version = host.run(f"{PREFIX}/bin/caffe.bin --version")
    assert version.rc == 0, version.stderr
    assert "caffe version" in (version.stdout + version.stderr)
    assert f"{PREFIX}/lib/libcaffe.so" in host.check_output("/sbin/ldconfig -p")
    assert host.file("/etc/ld.so.conf.d/dlrig-caffe-lib.conf").contains(f"{PREFIX}/lib")

    # import caffe through the .pth file (no PYTHONPATH), from any directory.
    pth = host.check_output(
        "python3 -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])'"
    )
    assert host.file(f"{pth}/{PTH_NAME}").content_string == f"{PREFIX}/python\n"
    where = host.check_output("cd / && python3 -c 'import caffe; print(caffe.__file__)'")
    assert where == f"{PREFIX}/python/caffe/__init__.py"

    # The build key is recorded, with its parts; the log is in /var/log/dlrig.
    record = json.loads(host.file(KEY_FILE).content_string)
    assert record["parts"]["commit"] == commit
    assert record["parts"]["cuda"] is None
    assert host.file(LOG_FILE).contains("make -j")
    config = host.file("/opt/dlrig/src/caffe/Makefile.config").content_string
    assert "CPU_ONLY := 1" in config
    assert "boost_python3" in config

    if ssd:
        result = _forward(target, "tiny-ssd.prototxt")
        assert "DetectionOutput" in result["layers"]
        assert result["outputs"] == {"detection_out": [1, 1, 10, 7]}
    else:
        result = _forward(target, "tiny-convnet.prototxt")
        # BVLC Caffe has no SSD layers: this is the upstream stand-in, not the fork.
        assert "DetectionOutput" not in result["layers"]
        assert result["outputs"] == {"prob": [1, 5]}
    assert result["finite"]


def test_caffe_cpu_only_bvlc_standin(debian_root, converge):
    repo, commit = caffe_source.standin_repo()
    _converge_and_verify(debian_root, converge, repo, commit, ssd=False)


def test_caffe_cpu_only_ssd_fork(debian_root, converge):
    mirror = caffe_source.ssd_mirror()
    if mirror is None:
        pytest.skip("DLRIG_CAFFE_SSD_MIRROR does not name a local weiliu89/caffe mirror")
    _converge_and_verify(debian_root, converge, mirror, caffe_source.SSD_COMMIT, ssd=True)
