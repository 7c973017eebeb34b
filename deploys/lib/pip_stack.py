"""The Python stack's pip specs, resolved from a small plan: CPU or GPU, CUDA, Python, Colab.

Pure logic, no pyinfra state. ``resolve(HostPlan(...), packages)`` gives a ``Stack``: what to
install from PyPI, what from the PyTorch wheel index for the host's CUDA (or from local wheels),
what counts as "already installed" (so hosted Colab keeps its working preinstalled frameworks),
and what the verification step expects. ``installs(stack, installed)`` then says which
requirements a host still needs, given its installed distributions.

The preflight plan (CUDA version, cpu_only, Python, Colab) feeds ``HostPlan``; until it lands,
the deploy builds one from ``facts.pip_stack.StackHost``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

# The frameworks that come from the PyTorch wheel index (one index per CUDA version).
TORCH_FAMILY = ("torch", "torchvision", "torchaudio")

DEFAULT_TORCH_INDEX = "https://download.pytorch.org/whl"

# System CA bundles pip should trust instead of its vendored certifi (TLS-intercepting
# proxies add their CA to the system store, never to certifi). First one present wins.
SYSTEM_CA_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Colab
    "/etc/pki/tls/certs/ca-bundle.crt",  # RHEL family
    "/etc/ssl/ca-bundle.pem",  # SUSE
)


class StackError(ValueError):
    """Host data the stack cannot be resolved from; the message names the data key."""


@dataclass(frozen=True)
class HostPlan:
    """What the resolution needs to know about a host (a slice of the preflight plan).

    + cpu_only: no usable NVIDIA GPU: CPU variants everywhere
    + cuda: the highest CUDA version the driver supports, e.g. ``"12.4"``; ignored when cpu_only
    + python: the target interpreter's ``major.minor``, e.g. ``"3.11"``
    + colab: hosted Colab: the interpreter's own environment, preinstalled frameworks kept
    """

    cpu_only: bool
    cuda: str | None
    python: str
    colab: bool = False
    torch_index_url: str | None = None
    torch_version: str | None = None
    tensorflow_version: str | None = None
    tensorflow_gpu: bool | None = None

    @classmethod
    def from_preflight(cls, plan: Any, colab: bool) -> HostPlan:
        """Build one from the preflight's ``deploys.lib.compat.Plan``.

        The frameworks need the driver, not a toolkit: GPU-ness comes from the variants the
        preflight chose (``torch.variant``, ``tensorflow.gpu``), the CUDA version from the
        driver (``"550.54.14 (CUDA ≤ 12.4)"``), falling back to the torch variant's CUDA.
        """
        python = plan.python.version if plan.python else ""
        m = re.search(r"CUDA\D*(\d+\.\d+)", plan.driver or "")
        cuda = m.group(1) if m else plan.torch.cuda
        gpu = plan.torch.variant != "cpu" or bool(plan.tensorflow.gpu)
        return cls(
            cpu_only=not (gpu and cuda),
            cuda=cuda if gpu else None,
            python=".".join(python.split(".")[:2]),
            colab=colab,
            torch_index_url=plan.torch.index_url,
            torch_version=plan.torch.version,
            tensorflow_version=plan.tensorflow.version,
            tensorflow_gpu=bool(plan.tensorflow.gpu),
        )

    def __post_init__(self) -> None:
        if not re.fullmatch(r"3\.\d+", self.python):
            raise StackError(f"python version {self.python!r} is not major.minor (e.g. '3.11')")
        if not self.cpu_only and not (self.cuda and re.fullmatch(r"\d+\.\d+", self.cuda)):
            raise StackError(f"a GPU host needs its CUDA version as major.minor, got {self.cuda!r}")

    @property
    def cuda_tuple(self) -> tuple[int, int] | None:
        if self.cpu_only or not self.cuda:
            return None
        major, minor = self.cuda.split(".")
        return int(major), int(minor)


@dataclass(frozen=True)
class Req:
    """One requirement of the stack.

    + name: the data key's name (``tensorflow``); what the verification step imports by
    + install: what pip installs, without the version (``tensorflow-cpu``, ``tensorflow[and-cuda]``)
    + spec: the version specifier (``""`` = any, ``==2.13.0+cpu``, ``>=2.16,<2.20``)
    + group: ``pypi`` or ``torch`` (installed together with the PyTorch index / local wheels)
    + satisfied_by: distributions that count as installed (``tensorflow`` for ``tensorflow-cpu``)
    + cuda_max: for torch-family wheels on GPU hosts, the newest CUDA build the driver takes
    + pin: the release pip installs when the data gives no spec (the preflight's choice); an
      installed version need not match it (what is installed and works stays)
    """

    name: str
    install: str
    spec: str
    group: str
    satisfied_by: tuple[str, ...]
    cuda_max: tuple[int, int] | None = None
    pin: str = ""

    @property
    def install_spec(self) -> str:
        """The spec pip installs with: the data's, else the preflight's release (``==2.9.*``)."""
        return self.spec or self.pin

    @property
    def pip_arg(self) -> str:
        """The argument pip gets: ``tensorflow-cpu>=2.16``."""
        return f"{self.install}{self.install_spec}"

    def accepts(self, version: str) -> bool:
        """Whether an installed ``version`` satisfies the spec (and the wheel's CUDA build)."""
        try:
            v = Version(version)
        except InvalidVersion:
            return False
        if self.spec and not SpecifierSet(self.spec).contains(v, prereleases=True):
            return False
        if self.cuda_max is not None and v.local:
            local = v.local
            if local == "cpu":
                return False  # a CPU build on a GPU host
            m = re.fullmatch(r"cu(\d+)(\d)", local)
            if m:
                built = (int(m.group(1)), int(m.group(2)))
                # Minor version compatibility: same CUDA major as the driver's runs.
                return built[0] <= self.cuda_max[0]
        return True


@dataclass(frozen=True)
class Stack:
    """The resolved stack for one host."""

    plan: HostPlan
    venv: str | None
    requirements: tuple[Req, ...]
    torch_index_url: str | None  # None: torch family from local wheels (find-links) or PyPI
    find_links: tuple[str, ...] = ()
    extra_index_urls: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # "torchvision: no local CPU wheel in /opt/wheels"
    expect_gpu: tuple[str, ...] = field(default=())  # frameworks that must see a GPU

    def group(self, name: str) -> tuple[Req, ...]:
        return tuple(r for r in self.requirements if r.group == name)

    def describe(self) -> str:
        """The resolved stack as reviewable text (golden plan files)."""
        p = self.plan
        accel = "CPU only" if p.cpu_only else f"GPU, driver CUDA {p.cuda}"
        env = self.venv or "the interpreter's own (no venv)"
        lines = [
            f"host: Python {p.python}, {accel}{', hosted Colab' if p.colab else ''}",
            f"environment: {env}",
        ]
        for group, source in (
            ("pypi", "PyPI"),
            ("torch", self.torch_index_url or "PyPI + find-links"),
        ):
            reqs = self.group(group)
            if not reqs:
                continue
            lines.append(f"{group} ({source}):")
            for r in reqs:
                also = [s for s in r.satisfied_by if s != canonicalize_name(r.install)]
                keep = f"  [kept if installed: {', '.join(r.satisfied_by)}]" if also else ""
                cuda = ""
                if r.cuda_max:
                    cuda = f"  [CUDA builds up to {r.cuda_max[0]}.x accepted]"
                lines.append(f"  {r.pip_arg}{keep}{cuda}")
        if self.find_links:
            lines.append(f"find-links: {' '.join(self.find_links)}")
        if self.extra_index_urls:
            lines.append(f"extra index URLs: {' '.join(self.extra_index_urls)}")
        for s in self.skipped:
            lines.append(f"skipped: {s}")
        lines.append(
            f"verify: GPU expected by {', '.join(self.expect_gpu)}"
            if self.expect_gpu
            else "verify: CPU devices only"
        )
        return "\n".join(lines) + "\n"


def check_packages(packages: Mapping[str, str | None], key: str = "pip_stack_packages") -> None:
    """Raise StackError for a bad name or version spec, naming ``key``."""
    if not isinstance(packages, Mapping):
        raise StackError(f"data key {key!r} must map package names to version specs")
    for name, spec in packages.items():
        try:
            req = Requirement(str(name))
        except InvalidRequirement:
            raise StackError(f"data key {key!r}: {name!r} is not a package name") from None
        if req.specifier or req.url or req.marker:
            raise StackError(
                f"data key {key!r}: give {req.name!r} as the key and its version spec as the "
                f"value ({{{req.name!r}: '>=1.0'}})"
            )
        if spec is None:
            continue
        if not isinstance(spec, str):
            raise StackError(f"data key {key!r}: spec of {name!r} must be a string, got {spec!r}")
        try:
            SpecifierSet(spec)
        except InvalidSpecifier:
            raise StackError(
                f"data key {key!r}: {spec!r} is not a version spec for {name!r} "
                "(e.g. '==2.16.1', '>=2.16,<2.20', '' for any)"
            ) from None


def check_url(url: str, key: str) -> None:
    """Refuse URLs pip cannot use and URLs that carry credentials (they would show in commands)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "file") and not url.startswith("/"):
        raise StackError(f"data key {key!r}: {url!r} is not an http(s)/file URL or absolute path")
    if parts.username or parts.password:
        raise StackError(
            f"data key {key!r}: {parts.hostname} URL carries credentials; put them in the "
            "host's ~/.netrc (0600) or pip's keyring instead, never in the deploy's commands"
        )


def torch_index(plan: HostPlan, base: str = DEFAULT_TORCH_INDEX) -> str:
    """The PyTorch wheel index the preflight plan chose (``cu128``, ``cpu``, from
    ``files/compat.yml``), on ``base`` (a mirror of download.pytorch.org/whl)."""
    if plan.torch_index_url:
        tag = plan.torch_index_url.rstrip("/").rsplit("/", 1)[-1]
    elif plan.cpu_only:
        tag = "cpu"
    else:
        raise StackError("a GPU host needs the plan's PyTorch wheel index (preflight resolves it)")
    return f"{base.rstrip('/')}/{tag}"


def local_torch_wheel(name: str, plan: HostPlan, wheels: Iterable[str]) -> Version | None:
    """The newest local wheel of ``name`` this host can use (CPU build, matching Python), if any.

    + wheels: wheel file names found in the find-links directories
    """
    best: Version | None = None
    want_tag = f"cp{plan.python.replace('.', '')}"
    for filename in wheels:
        try:
            wname, version, _build, tags = parse_wheel_filename(filename.rsplit("/", 1)[-1])
        except ValueError:
            continue
        if wname != canonicalize_name(name):
            continue
        if not any(t.interpreter in (want_tag, "py3") for t in tags):
            continue
        if not any("x86_64" in t.platform or t.platform == "any" for t in tags):
            continue
        # Local wheels are for CPU hosts: a GPU host takes its CUDA build from the index.
        if version.local not in (None, "cpu") or not plan.cpu_only:
            continue
        if best is None or version > best:
            best = version
    return best


def resolve(
    plan: HostPlan,
    packages: Mapping[str, str | None],
    *,
    venv: str | None = None,
    torch_wheels: str = "index",
    local_wheels: Iterable[str] = (),
    find_links: Iterable[str] = (),
    extra_index_urls: Iterable[str] = (),
    torch_index_base: str = DEFAULT_TORCH_INDEX,
) -> Stack:
    """Resolve the data's package specs into a ``Stack`` for one host.

    + plan: the host's ``HostPlan``
    + packages: name → version spec (``""`` any, ``None`` leave out), e.g. ``{"torch": ""}``
    + venv: the plan's venv path (``plan.python.venv``), or None for the interpreter's own
      environment
    + torch_wheels: ``"index"`` (the PyTorch index for the host's CUDA) or ``"local"`` (only
      CPU wheels found in find-links; torch-family packages without one are skipped)
    + local_wheels: wheel file names in the find-links directories (for ``"local"``)

    **Example:**

    .. code:: python

        resolve(HostPlan(cpu_only=True, cuda=None, python="3.11"), {"tensorflow": ""})
    """
    check_packages(packages)
    if torch_wheels not in ("index", "local"):
        raise StackError(
            f"data key 'pip_stack_torch_wheels' must be 'index' or 'local', got {torch_wheels!r}"
        )
    for url in find_links:
        check_url(url, "pip_stack_find_links")
    for url in extra_index_urls:
        check_url(url, "pip_stack_extra_index_urls")
    check_url(torch_index_base, "pip_stack_torch_index_url")
    if venv is not None and not venv.startswith("/"):
        raise StackError(f"data key 'pip_stack_venv' must be an absolute path, got {venv!r}")

    packages = dict(packages)
    names = {canonicalize_name(n) for n in packages}
    if "jupyter-http-over-ws" in names and "notebook" not in names:
        # jupyter_http_over_ws is a classic-notebook server extension: it imports
        # notebook.base.handlers, which Notebook 7 removed.
        packages["notebook"] = "<7"

    cuda = plan.cuda_tuple
    local_wheels = list(local_wheels)
    reqs: list[Req] = []
    skipped: list[str] = []
    expect_gpu: list[str] = []
    for raw_name, raw_spec in packages.items():
        if raw_spec is None:
            continue
        name = canonicalize_name(raw_name)
        spec = raw_spec.replace(" ", "")
        if name in ("tensorflow", "tensorflow-cpu"):
            both = ("tensorflow", "tensorflow-cpu")
            pin = f"=={plan.tensorflow_version}.*" if plan.tensorflow_version else ""
            if cuda is None or plan.tensorflow_gpu is False:
                reqs.append(Req(name, "tensorflow-cpu", spec, "pypi", both, pin=pin))
                continue
            if name == "tensorflow-cpu":
                raise StackError(
                    "data key 'pip_stack_packages': tensorflow-cpu on a GPU host; name "
                    "'tensorflow' (dlrig picks the CUDA variant)"
                )
            reqs.append(Req(name, "tensorflow[and-cuda]", spec, "pypi", ("tensorflow",), pin=pin))
            expect_gpu.append("tensorflow")
        elif name in TORCH_FAMILY:
            if torch_wheels == "local":
                version = local_torch_wheel(name, plan, local_wheels)
                if version is None:
                    where = " ".join(find_links) or "no find-links given"
                    skipped.append(f"{name}: no usable local CPU wheel ({where})")
                    continue
                if spec and not SpecifierSet(spec).contains(version, prereleases=True):
                    raise StackError(
                        f"data key 'pip_stack_packages': {name}{spec} does not match the local "
                        f"wheel {name} {version}"
                    )
                spec = f"=={version}"
            pin = ""
            if name == "torch" and plan.torch_version and torch_wheels == "index":
                pin = f"=={plan.torch_version}.*"
            reqs.append(Req(name, name, spec, "torch", (name,), cuda, pin=pin))
            if name == "torch" and cuda is not None:
                expect_gpu.append("torch")
        else:
            reqs.append(Req(name, name, spec, "pypi", (name,)))

    return Stack(
        plan=plan,
        venv=venv,
        requirements=tuple(reqs),
        torch_index_url=torch_index(plan, torch_index_base) if torch_wheels == "index" else None,
        find_links=tuple(find_links),
        extra_index_urls=tuple(extra_index_urls),
        skipped=tuple(skipped),
        expect_gpu=tuple(expect_gpu),
    )


@dataclass(frozen=True)
class Decision:
    """What to do about one requirement: ``install`` it or not, and the sentence why."""

    req: Req
    install: bool
    why: str


def decide(stack: Stack, installed: Mapping[str, Iterable[str]]) -> list[Decision]:
    """Which requirements the host still needs, given its installed distributions.

    + installed: canonical distribution name → installed versions (``PipDistributions`` fact)

    An installed distribution that satisfies a requirement is left alone (Colab's preinstalled
    CUDA torch is never reinstalled); a pin that differs is installed and said so.
    """
    out = []
    for req in stack.requirements:
        found = [(n, v) for n in req.satisfied_by for v in sorted(installed.get(n, ()))]
        ok = [(n, v) for n, v in found if req.accepts(v)]
        if ok:
            n, v = ok[0]
            out.append(Decision(req, False, f"{n} {v} satisfies {req.install}{req.spec}"))
        elif found:
            have = ", ".join(f"{n} {v}" for n, v in found)
            out.append(Decision(req, True, f"{have} does not satisfy {req.pip_arg}: replacing"))
        else:
            out.append(Decision(req, True, f"{req.pip_arg} is not installed"))
    return out


def render_pip_conf(
    cert: str | None, find_links: Iterable[str], extra_index_urls: Iterable[str], index_url: str
) -> str:
    """The venv's ``pip.conf``: later ``pip install`` in the venv uses the same CA and indexes."""
    lines = ["# Managed by dlrig (pip_stack); changes are overwritten.", "[global]"]
    if cert:
        lines.append(f"cert = {cert}")
    lines.append(f"index-url = {index_url}")
    if extra_index_urls:
        lines.append("extra-index-url = " + " ".join(extra_index_urls))
    if find_links:
        lines.append("find-links = " + " ".join(find_links))
    return "\n".join(lines) + "\n"
