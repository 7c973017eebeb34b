"""Resolution of the Python stack: variants, indexes, what counts as installed, index checks."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploys.lib.pip_report import (
    offered_versions,
    parse_pip_list,
    problems,
    summary,
    unavailable,
)
from deploys.lib.pip_stack import (
    HostPlan,
    StackError,
    check_packages,
    check_url,
    decide,
    render_pip_conf,
    resolve,
    torch_index,
)

CPU311 = HostPlan(cpu_only=True, cuda=None, python="3.11")
GPU = HostPlan(
    cpu_only=False,
    cuda="12.2",
    python="3.12",
    torch_index_url="https://download.pytorch.org/whl/cu121",
)
WHEEL = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"


def test_torch_index_is_the_plans_on_a_mirror():
    assert torch_index(CPU311, "https://mirror.example/whl/") == "https://mirror.example/whl/cpu"
    assert torch_index(GPU, "https://mirror.example/whl") == "https://mirror.example/whl/cu121"
    with pytest.raises(StackError, match="wheel index"):
        torch_index(HostPlan(cpu_only=False, cuda="12.4", python="3.10"))


def test_bad_plans_are_refused():
    with pytest.raises(StackError, match=r"major\.minor"):
        HostPlan(cpu_only=True, cuda=None, python="3")
    with pytest.raises(StackError, match="CUDA version"):
        HostPlan(cpu_only=False, cuda=None, python="3.11")


@pytest.mark.parametrize(
    ("installed", "ok"),
    [
        ("2.5.1+cu121", True),
        ("2.5.1+cu124", True),  # minor version compatibility within CUDA 12
        ("2.5.1+cu118", True),
        ("2.5.1", True),  # PyPI's default Linux build is a CUDA build
        ("2.5.1+cpu", False),  # a CPU build on a GPU host
        ("2.9.0+cu130", False),  # needs a CUDA 13 driver
        ("not-a-version", False),
    ],
)
def test_gpu_host_accepts_only_usable_torch_builds(installed, ok):
    stack = resolve(GPU, {"torch": ""})
    assert stack.requirements[0].accepts(installed) is ok


def test_cpu_host_accepts_any_torch_build():
    stack = resolve(CPU311, {"torch": ""})
    assert stack.requirements[0].accepts("2.6.0+cu124")
    assert stack.requirements[0].accepts("2.13.0+cpu")


def test_a_pin_that_differs_is_installed_and_said_so():
    stack = resolve(GPU, {"torch": "==2.5.1"})
    [d] = decide(stack, {"torch": {"2.6.0+cu124"}})
    assert d.install
    assert d.why == "torch 2.6.0+cu124 does not satisfy torch==2.5.1: replacing"
    [d] = decide(stack, {"torch": {"2.5.1+cu121"}})
    assert not d.install  # == without a local label matches any build


def test_cpu_tensorflow_is_satisfied_by_either_distribution():
    stack = resolve(CPU311, {"tensorflow": ">=2.16"})
    [req] = stack.requirements
    assert req.pip_arg == "tensorflow-cpu>=2.16"
    assert not decide(stack, {"tensorflow": {"2.19.0"}})[0].install
    assert not decide(stack, {"tensorflow-cpu": {"2.21.0"}})[0].install
    assert decide(stack, {"tensorflow": {"2.15.0"}})[0].install


def test_tensorflow_cpu_on_a_gpu_host_is_refused():
    with pytest.raises(StackError, match="tensorflow-cpu on a GPU host"):
        resolve(GPU, {"tensorflow-cpu": ""})


def test_local_torch_wheels_pin_the_wheel_and_skip_what_is_missing():
    stack = resolve(
        CPU311,
        {"torch": "", "torchvision": "", "torchaudio": None},
        torch_wheels="local",
        local_wheels=[f"/srv/wheels/{WHEEL}", "/srv/wheels/torch-2.12.0+cpu-cp311-cp311-x.whl"],
        find_links=["/srv/wheels"],
    )
    assert [r.pip_arg for r in stack.requirements] == ["torch==2.13.0+cpu"]
    assert stack.torch_index_url is None
    assert stack.skipped == ("torchvision: no usable local CPU wheel (/srv/wheels)",)
    assert not decide(stack, {"torch": {"2.13.0+cpu"}})[0].install


@pytest.mark.parametrize(
    "plan",
    [HostPlan(cpu_only=True, cuda=None, python="3.12"), GPU],  # wrong Python; a GPU host
)
def test_local_wheel_that_does_not_fit_is_skipped(plan):
    stack = resolve(plan, {"torch": ""}, torch_wheels="local", local_wheels=[WHEEL])
    assert stack.requirements == ()
    assert stack.skipped


def test_local_wheel_must_match_a_pin():
    with pytest.raises(StackError, match="does not match the local wheel"):
        resolve(CPU311, {"torch": "==2.5.0"}, torch_wheels="local", local_wheels=[WHEEL])


def test_jupyter_http_over_ws_brings_the_classic_notebook():
    stack = resolve(CPU311, {"jupyter_http_over_ws": ""})
    assert [r.pip_arg for r in stack.requirements] == ["jupyter-http-over-ws", "notebook<7"]
    stack = resolve(CPU311, {"jupyter_http_over_ws": "", "notebook": "==6.5.7"})
    assert [r.pip_arg for r in stack.requirements][-1] == "notebook==6.5.7"


def test_the_stack_goes_into_the_plans_venv():
    assert resolve(CPU311, {}).venv is None
    assert resolve(CPU311, {}, venv="/opt/dlrig/venv").venv == "/opt/dlrig/venv"
    with pytest.raises(StackError, match="absolute"):
        resolve(CPU311, {}, venv="venv")


@pytest.mark.parametrize(
    ("packages", "message"),
    [
        ({"tensorflow": "2.16"}, "is not a version spec"),
        ({"tensorflow==2.16": ""}, "as the key"),
        ({"bad name!": ""}, "is not a package name"),
        ({"keras": 3}, "must be a string"),
    ],
)
def test_bad_package_data_names_the_key(packages, message):
    with pytest.raises(StackError, match=message) as e:
        check_packages(packages)
    assert "pip_stack_packages" in str(e.value)


def test_urls_with_credentials_are_refused_without_echoing_them():
    with pytest.raises(StackError) as e:
        check_url("https://me:t0ken@pkgs.example/simple", "pip_stack_extra_index_urls")
    assert "t0ken" not in str(e.value) and "pip_stack_extra_index_urls" in str(e.value)
    with pytest.raises(StackError, match="not an http"):
        check_url("ftp://x/simple", "pip_stack_index_url")
    check_url("/srv/wheels", "pip_stack_find_links")


def test_pip_list_json_is_parsed_with_local_versions_and_canonical_names():
    text = json.dumps(
        [
            {"name": "torch", "version": "2.13.0+cpu"},
            {"name": "jupyter_http_over_ws", "version": "0.0.8"},
            {"name": "Keras", "version": "3.15.1"},
        ]
    )
    assert parse_pip_list(text) == {
        "torch": {"2.13.0+cpu"},
        "jupyter-http-over-ws": {"0.0.8"},
        "keras": {"3.15.1"},
    }


def test_offered_versions_from_index_file_names():
    files = [
        "tensorflow_cpu-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl",
        "tensorflow-cpu-2.0.0.tar.gz",
        "tensorflow_cpu-2.20.0-cp312-cp312-win_amd64.whl#sha256=00",
        "README.html",
        "keras-3.0.0-py3-none-any.whl",
    ]
    assert {str(v) for v in offered_versions("tensorflow-cpu", files)} == {
        "2.21.0",
        "2.0.0",
        "2.20.0",
    }


def test_unavailable_names_the_package_and_the_newest_releases():
    stack = resolve(CPU311, {"tensorflow": "==0.0.1", "keras": "", "numpy": "", "nopkg": ""})
    decisions = decide(stack, {"numpy": {"2.0.0"}})
    offered = {
        "tensorflow-cpu": {"files": ["tensorflow_cpu-2.21.0-cp311-cp311-x.whl"], "errors": []},
        "keras": {"files": ["keras-3.15.1-py3-none-any.whl"], "errors": []},
        "nopkg": {"files": [], "errors": []},
    }
    assert unavailable(decisions, offered) == [
        "tensorflow-cpu==0.0.1: no such release (newest offered: 2.21.0)",
        "nopkg: no such package on the index",
    ]
    offered["keras"] = {"files": [], "errors": ["https://pypi.org/simple: timed out"]}
    assert "keras: could not list the index (https://pypi.org/simple: timed out)" in unavailable(
        decisions, offered
    )


def test_problems_name_the_reason_a_gpu_is_not_seen():
    stack = resolve(GPU, {"tensorflow": "", "torch": "", "keras": ""})
    report = {
        "python": "3.12.3",
        "tensorflow": {"version": "2.19.0", "cuda": "12.5.1", "gpu": False, "devices": ["CPU:0"]},
        "torch": {"version": "2.8.0+cu128", "cuda": "12.8", "gpu": False, "devices": ["cpu"]},
        "keras": {"error": "ModuleNotFoundError: No module named 'keras'"},
    }
    found = problems(stack, report)
    assert found[0].startswith("tensorflow 2.19.0 sees no GPU: its wheel is built for CUDA 12.5.1")
    assert "newer than the driver supports (CUDA 12.2)" in found[1]
    assert found[2] == "keras does not import: ModuleNotFoundError: No module named 'keras'"
    report["torch"] = {"version": "2.8.0+cpu", "cuda": None, "gpu": False}
    assert "CPU-only build" in problems(stack, report)[1]
    ok = {
        "tensorflow": {"version": "2.19.0", "cuda": "12.2", "gpu": True, "devices": ["GPU:0"]},
        "torch": {"version": "2.5.1+cu121", "gpu": True, "devices": ["cpu", "cuda:0 Tesla T4"]},
        "keras": {"version": "3.10.0"},
    }
    assert problems(stack, ok) == []
    assert summary(stack, {"python": "3.12.3", **ok}) == (
        "Python 3.12.3: tensorflow 2.19.0 [GPU:0], torch 2.5.1+cu121 [cpu, cuda:0 Tesla T4], "
        "keras 3.10.0"
    )


def test_cpu_host_needs_no_gpu():
    stack = resolve(CPU311, {"tensorflow": ""})
    assert problems(stack, {"tensorflow": {"version": "2.21.0", "gpu": False}}) == []


def test_pip_conf_carries_the_ca_bundle():
    text = render_pip_conf(
        "/etc/ssl/certs/ca-certificates.crt", ["/srv/w"], [], "https://pypi.org/simple"
    )
    assert "cert = /etc/ssl/certs/ca-certificates.crt\n" in text
    assert "find-links = /srv/w\n" in text
    assert "cert" not in render_pip_conf(None, [], [], "https://pypi.org/simple")


@given(
    installed=st.from_regex(
        r"[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}(\+cu1[1-3][0-9]|\+cpu)?", fullmatch=True
    ),
    spec=st.sampled_from(["", ">=2.0", "<3", "==2.5.1", "!=2.5.1"]),
    cpu_only=st.booleans(),
)
def test_an_accepted_install_is_never_reinstalled(installed, spec, cpu_only):
    plan = CPU311 if cpu_only else GPU
    stack = resolve(plan, {"torch": spec})
    [d] = decide(stack, {"torch": {installed}})
    assert d.install is not stack.requirements[0].accepts(installed)


def _preflight(variant: str, tf_gpu: bool, driver: str | None):
    from types import SimpleNamespace

    cuda = None if variant == "cpu" else f"{variant[2:-1]}.{variant[-1]}"
    return SimpleNamespace(
        python=SimpleNamespace(version="3.12.11"),
        driver=driver,
        torch=SimpleNamespace(
            version="2.7",
            variant=variant,
            index_url=f"https://download.pytorch.org/whl/{variant}",
            cuda=cuda,
        ),
        tensorflow=SimpleNamespace(version="2.20", gpu=tf_gpu),
    )


def test_host_plan_from_the_preflight_plan():
    plan = HostPlan.from_preflight(
        _preflight("cu118", True, "535.129.03 (CUDA ≤ 12.2)"), colab=True
    )
    assert (plan.cpu_only, plan.cuda, plan.python, plan.colab) == (False, "12.2", "3.12", True)
    stack = resolve(plan, {"tensorflow": "", "torch": "", "torchvision": ""})
    assert stack.torch_index_url == "https://download.pytorch.org/whl/cu118"
    assert [r.pip_arg for r in stack.requirements] == [
        "tensorflow[and-cuda]==2.20.*",
        "torch==2.7.*",
        "torchvision",
    ]
    # The preflight's release is what gets installed, not a reason to replace what works.
    decisions = decide(stack, {"tensorflow": {"2.19.0"}, "torch": {"2.8.0+cu126"}})
    assert [d.install for d in decisions] == [False, False, True]
    # A mirror of the PyTorch index keeps the preflight's variant.
    mirrored = resolve(plan, {"torch": ""}, torch_index_base="https://mirror.example/whl")
    assert mirrored.torch_index_url == "https://mirror.example/whl/cu118"


def test_host_plan_from_a_cpu_preflight_plan():
    plan = HostPlan.from_preflight(_preflight("cpu", False, None), colab=False)
    assert plan.cpu_only and plan.cuda is None
    stack = resolve(plan, {"tensorflow": ""})
    assert [r.pip_arg for r in stack.requirements] == ["tensorflow-cpu==2.20.*"]
    assert stack.torch_index_url == "https://download.pytorch.org/whl/cpu"
