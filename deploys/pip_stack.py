"""The Python stack: TensorFlow, PyTorch, Keras, jupyter_http_over_ws matched to the CUDA."""

from __future__ import annotations

import io
from typing import Any

from pyinfra import host
from pyinfra.api import DeployError, OperationError, QuoteString, StringCommand, deploy, operation
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.files import File, FindFiles
from pyinfra.facts.server import Which
from pyinfra.operations import files, pip

from deploys import apt_packages
from deploys.lib import data
from deploys.lib.pip_report import (
    import_name,
    problems,
    summary,
    unavailable,
)
from deploys.lib.pip_stack import (
    DEFAULT_TORCH_INDEX,
    SYSTEM_CA_BUNDLES,
    HostPlan,
    Req,
    Stack,
    StackError,
    check_url,
    decide,
    render_pip_conf,
    resolve,
)
from facts.pip_stack import FrameworkReport, IndexFiles, PipDistributions
from facts.platform import ColabRuntime

PREFIX = "pip_stack_"

PYPI = "https://pypi.org/simple"

DEFAULTS: dict[str, Any] = {
    "pip_stack_packages": {
        "tensorflow": "",
        "keras": "",
        "torch": "",
        "torchvision": "",
        "jupyter_http_over_ws": "",
        "numpy": "",
    },
    "pip_stack_venv": "auto",
    "pip_stack_index_url": PYPI,
    "pip_stack_extra_index_urls": [],
    "pip_stack_find_links": [],
    "pip_stack_torch_wheels": "index",
    "pip_stack_torch_index_url": DEFAULT_TORCH_INDEX,
    "pip_stack_ca_bundle": "auto",
    "pip_stack_cache_dir": None,
    "pip_stack_verify": True,
}

DOCS: dict[str, str] = {
    "pip_stack_packages": (
        "Package name -> version spec ('' any, '>=2.16', None leaves it out). tensorflow becomes "
        "tensorflow-cpu on CPU hosts and tensorflow[and-cuda] on GPU hosts; torch-family "
        "packages come from the PyTorch index for the host's CUDA. Installed packages that "
        "satisfy a spec are left alone."
    ),
    "pip_stack_venv": (
        "'auto' (a venv at /opt/dlrig/venv made from preflight_python; on hosted Colab the "
        "interpreter's own environment), a venv path, or None (the interpreter's own "
        "environment). Resolved by preflight: Boost.Python, pycaffe, the stack and the speed "
        "check all use this interpreter (the plan's python.target)."
    ),
    "pip_stack_index_url": "Package index for everything but the torch family (a PyPI mirror).",
    "pip_stack_extra_index_urls": (
        "More package indexes. URLs must not carry credentials: put those in ~/.netrc."
    ),
    "pip_stack_find_links": "Directories or URLs of wheels pip may install from (--find-links).",
    "pip_stack_torch_wheels": (
        "'index': the torch family from the PyTorch index for the host's CUDA (cu1xx or cpu); "
        "'local': only CPU wheels found in pip_stack_find_links (others are skipped)."
    ),
    "pip_stack_torch_index_url": "Base of the PyTorch wheel indexes (<base>/cu128, <base>/cpu).",
    "pip_stack_ca_bundle": (
        "CA bundle pip verifies TLS with (--cert, and the venv's pip.conf): 'auto' = the "
        "system bundle when the host has one (TLS-intercepting proxies), a path, or None = "
        "pip's own certifi."
    ),
    "pip_stack_cache_dir": (
        "Download cache on the host: wheels are kept in <dir>/wheels and installed from there "
        "(survives proxies that strip caching headers and ephemeral VMs, e.g. on Drive); "
        "None = <build_cache_dir>/pip when build_cache_dir is set, else pip's default cache."
    ),
    "pip_stack_verify": (
        "Import each framework afterwards and print versions and devices; a GPU host whose "
        "frameworks see no GPU fails with the reason."
    ),
}


def _pip_options(
    index_url: str,
    extra_index_urls: tuple[str, ...],
    find_links: tuple[str, ...],
    cert: str | None,
    cache_dir: str | None,
) -> list[Any]:
    args: list[Any] = ["--index-url", QuoteString(index_url)]
    for url in extra_index_urls:
        args += ["--extra-index-url", QuoteString(url)]
    for link in find_links:
        args += ["--find-links", QuoteString(link)]
    if cert:
        args += ["--cert", QuoteString(cert)]
    if cache_dir:
        args += ["--cache-dir", QuoteString(cache_dir)]
    return args


@operation()
def install(
    python: str,
    stack: Stack,
    group: str,
    index_url: str,
    cert: str | None = None,
    cache_dir: str | None = None,
):
    """
    Install the requirements of one group that the environment does not satisfy yet.

    + python: the target interpreter (a venv's ``bin/python``)
    + stack: the resolved ``Stack``
    + group: ``pypi`` or ``torch`` (one pip command per group, so pip resolves them together)
    + index_url: the index pip installs this group from
    + cert: CA bundle for pip (``--cert``)
    + cache_dir: a wheelhouse (``<cache_dir>/wheels``) pip downloads into first and installs
      from, and pip's HTTP cache (``<cache_dir>/http``)

    Installed distributions that satisfy a requirement are left alone (hosted Colab keeps its
    preinstalled CUDA torch); a differing pin is installed and reported.

    **Example:**

    .. code:: python

        install(python="/opt/dlrig/venv/bin/python", stack=stack, group="pypi",
                index_url="https://pypi.org/simple")
    """
    reqs = stack.group(group)
    installed = host.get_fact(PipDistributions, python=python)
    decisions = [d for d in decide(stack, installed) if d.req in reqs]
    todo = [d for d in decisions if d.install]
    if not todo:
        host.noop("; ".join(d.why for d in decisions))
        return
    if host.state.is_executing:
        for d in todo:
            host.log(f"pip_stack: {d.why}")
    specs = [QuoteString(d.req.pip_arg) for d in todo]
    pip_cmd = [QuoteString(python), "-m pip --disable-pip-version-check --no-input"]
    if cache_dir:
        # A wheelhouse: pip's HTTP cache stores nothing behind proxies that strip caching
        # headers, and is lost with an ephemeral VM; files here survive and are reused.
        wheels = f"{cache_dir}/wheels"
        opts = _pip_options(
            index_url, stack.extra_index_urls, stack.find_links, cert, f"{cache_dir}/http"
        )
        yield StringCommand(
            *pip_cmd, "download --progress-bar off --dest", QuoteString(wheels), *opts, *specs
        )
        # Everything the download resolved is in the wheelhouse now: install from it alone
        # (no second round of index requests), plus the user's own find-links.
        opts = ["--no-index", "--find-links", QuoteString(wheels)]
        for link in stack.find_links:
            opts += ["--find-links", QuoteString(link)]
    else:
        opts = _pip_options(index_url, stack.extra_index_urls, stack.find_links, cert, None)
    yield StringCommand(*pip_cmd, "install --upgrade --progress-bar off", *opts, *specs)


@operation()
def verify(python: str, stack: Stack):
    """
    Import each framework in the target interpreter; print versions and the devices each sees.

    + python: the target interpreter
    + stack: the resolved ``Stack`` (what to import, which frameworks must see a GPU)

    Changes nothing. Fails when a framework does not import, or when a GPU host's TensorFlow
    or PyTorch sees no GPU, with the reason (CPU build, wheel's CUDA newer than the driver).

    **Example:**

    .. code:: python

        verify(python="/opt/dlrig/venv/bin/python", stack=stack)
    """
    if not host.state.is_executing:
        host.noop("frameworks are imported and checked after the install")
        return
    modules = [import_name(r.name) for r in stack.requirements]
    report = host.get_fact(FrameworkReport, python=python, modules=modules)
    if not report:
        raise OperationError(f"{python} is missing: nothing to verify")
    host.log(f"pip_stack: {summary(stack, report)}")
    found = problems(stack, report)
    if found:
        raise OperationError("; ".join(found))
    return
    yield  # a generator that never yields a command


def _plan() -> HostPlan:
    from deploys.preflight import plan_for

    return HostPlan.from_preflight(plan_for(host), colab=host.get_fact(ColabRuntime)["hosted"])


def target_python() -> str:
    """The plan's interpreter: the venv's ``bin/python`` or the base interpreter itself (what
    Boost.Python, pycaffe, the speed check and the local runtime's kernel use)."""
    from deploys.preflight import plan_for

    return plan_for(host).python.target  # type: ignore[union-attr]  # preflight requires it


def _ca_bundle(value: str | None) -> str | None:
    if value is None:
        return None
    if value == "auto":
        return next((p for p in SYSTEM_CA_BUNDLES if host.get_fact(File, path=p)), None)
    if not host.get_fact(File, path=value):
        raise DeployError(f"{host.name}: data key 'pip_stack_ca_bundle': {value} does not exist")
    return value


def _local_wheels(find_links: list[str]) -> list[str]:
    wheels: list[str] = []
    for link in find_links:
        if link.startswith("/"):
            wheels += host.get_fact(FindFiles, path=link, fname="*.whl", maxdepth=1) or []
    return wheels


def _check_available(
    python: str, target: str, stack: Stack, index_url: str, cert: str | None
) -> None:
    """Fail before any change when a requirement to install exists on no index."""
    decisions = decide(stack, host.get_fact(PipDistributions, python=target))
    torch_key = "pip_stack_torch_index_url" if stack.torch_index_url else "pip_stack_index_url"
    missing: list[str] = []
    unreachable: list[str] = []
    for group, base, key in (
        ("pypi", index_url, "pip_stack_index_url"),
        ("torch", stack.torch_index_url or index_url, torch_key),
    ):
        todo = [d for d in decisions if d.install and d.req.group == group]
        if not todo:
            continue
        offered = host.get_fact(
            IndexFiles,
            python=python,
            sources=[base, *stack.extra_index_urls, *stack.find_links],
            names=sorted({d.req.install.split("[", 1)[0] for d in todo}),
            cert=cert,
        )
        if offered is None:
            continue  # the interpreter did not run (a fake host): pip reports at install time
        for error in unavailable(todo, offered):
            if "could not list the index" in error:
                unreachable.append(
                    f"{error}: check data key {key!r}, the proxy, or 'pip_stack_ca_bundle'"
                )
            else:
                missing.append(error)
    if missing or unreachable:
        lines = [f"data key 'pip_stack_packages': {e}" for e in missing] + unreachable
        raise DeployError(f"{host.name}: " + "; ".join(lines) + " (nothing changed)")


@deploy("Install the Python deep-learning stack", data_defaults=DEFAULTS)
def pip_stack(plan: HostPlan | None = None) -> list[OperationMeta]:
    """
    Install TensorFlow, PyTorch, Keras and friends, matched to the host's CUDA.

    + plan: the host's ``HostPlan``; ``None`` builds it from the preflight plan
      (``deploys.preflight.plan_for``: variants, torch index, releases) and ``ColabRuntime``

    Returns the install operations (the speed check reruns when they changed something).

    A venv at ``/opt/dlrig/venv`` on servers (``python3-venv`` installed via APT), the
    interpreter's own environment on hosted Colab. Each spec is checked against the indexes
    from the host before anything changes; installed packages that satisfy their spec are left
    alone; the frameworks are imported at the end and their versions and devices printed.

    **Example:**

    .. code:: python

        from deploys.pip_stack import pip_stack

        pip_stack()
    """
    data.check_host_data(host, DEFAULTS)
    d = host.data
    from deploys.preflight import plan_for

    interpreter = plan_for(host).python
    assert interpreter is not None  # preflight fails without one
    python = interpreter.base
    try:
        check_url(d.pip_stack_index_url, "pip_stack_index_url")
        plan = plan or _plan()
        stack = resolve(
            plan,
            d.pip_stack_packages,
            venv=interpreter.venv,
            torch_wheels=d.pip_stack_torch_wheels,
            local_wheels=_local_wheels(list(d.pip_stack_find_links)),
            find_links=d.pip_stack_find_links,
            extra_index_urls=d.pip_stack_extra_index_urls,
            torch_index_base=d.pip_stack_torch_index_url,
        )
    except StackError as e:
        raise DeployError(f"{host.name}: {e}") from None
    cert = _ca_bundle(d.pip_stack_ca_bundle)
    cache_dir = d.pip_stack_cache_dir
    build_cache = str(host.data.get("build_cache_dir") or "")
    if cache_dir is None and build_cache.startswith("/"):
        cache_dir = f"{build_cache.rstrip('/')}/pip"
    target = f"{stack.venv}/bin/python" if stack.venv else python
    _check_available(python, target, stack, d.pip_stack_index_url, cert)
    for line in stack.describe().splitlines():
        host.log(f"pip_stack plan: {line}")

    if stack.venv:
        if host.get_fact(Which, command="apt-get"):
            apt_packages.present(
                name="Install python3-venv",
                packages=["python3-venv"],
                cache_time=86400,
            )
        pip.venv(name=f"Create the venv {stack.venv}", path=stack.venv, python=python)
        files.put(
            name=f"Write {stack.venv}/pip.conf (CA bundle, indexes)",
            src=io.StringIO(
                render_pip_conf(
                    cert, stack.find_links, stack.extra_index_urls, d.pip_stack_index_url
                )
            ),
            dest=f"{stack.venv}/pip.conf",
            mode="644",
        )

    installs: list[OperationMeta] = []
    for group, index_url in (
        ("pypi", d.pip_stack_index_url),
        ("torch", stack.torch_index_url or d.pip_stack_index_url),
    ):
        reqs: tuple[Req, ...] = stack.group(group)
        if reqs:
            op = install(
                name=f"Ensure pip packages ({index_url}): {' '.join(r.pip_arg for r in reqs)}",
                python=target,
                stack=stack,
                group=group,
                index_url=index_url,
                cert=cert,
                cache_dir=cache_dir,
            )
            installs.append(op)
    if d.pip_stack_verify:
        verify(
            name="Verify the frameworks import and see their devices", python=target, stack=stack
        )
    return installs
