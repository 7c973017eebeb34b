"""The plan's inputs and shapes (deploys/lib/plan.py): data options, interpreter, Boost."""

from __future__ import annotations

import pytest

from deploys.lib.compat import CompatError, Options, resolve
from tests.deploys.lib.test_compat import debian12, errors_of, python

# --- options -------------------------------------------------------------------------------


def test_options_from_data():
    opts = Options.from_data(
        {"preflight_cuda_arch": ["sm_86", 75, "8.6"], "toolchain_gcc": 11, "unrelated": 1}
    )
    assert opts.cuda_arch == ("7.5", "8.6") and opts.gcc == 11


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"preflight_cuda_arch": ["ampere"]}, "preflight_cuda_arch"),
        ({"toolchain_gcc": 2}, "toolchain_gcc"),
        ({"preflight_torch_version": "latest"}, "preflight_torch_version"),
        ({"preflight_cuda_toolkit": "cuda"}, "preflight_cuda_toolkit"),
    ],
)
def test_bad_option_values_name_the_key(data, key):
    with pytest.raises(CompatError, match=key):
        Options.from_data(data)


def test_option_defaults_equal_deploy_defaults():
    from deploys.boost import DEFAULTS as BOOST
    from deploys.pip_stack import DEFAULTS as PIP
    from deploys.preflight import DEFAULTS as PRE
    from deploys.toolchain import DEFAULTS as TOOL

    defaults = {**PRE, **TOOL, **BOOST, **PIP}
    opts = Options()
    for attr, key in Options.KEYS.items():
        value = getattr(opts, attr)
        assert (list(value) if isinstance(value, tuple) else value) == defaults[key], key
    assert opts.venv == defaults["pip_stack_venv"]


def test_interpreter_venv_and_target():
    server = resolve(debian12(), Options())
    assert (server.python.base, server.python.venv) == ("/usr/bin/python3", "/opt/dlrig/venv")
    assert server.python.target == "/opt/dlrig/venv/bin/python" and server.python.system
    # pyinfra @local run from a controller venv: the host's interpreter is the venv's base.
    seen = {**python(), "python": "/home/me/dlrig/.venv/bin/python3"}
    local = resolve(debian12(python=seen | {"base_executable": "/usr/bin/python3.11"}), Options())
    assert local.python.base == "/usr/bin/python3.11"
    assert local.python.target == "/opt/dlrig/venv/bin/python"
    colab = resolve(debian12(colab={"hosted": True}), Options())
    assert colab.python.venv is None and colab.python.target == "/usr/bin/python3"
    assert not colab.python.system
    own = resolve(debian12(), Options(venv=None))
    assert own.python.target == "/usr/bin/python3" and own.python.system
    assert resolve(debian12(), Options(venv="/srv/v/")).python.target == "/srv/v/bin/python"


def test_boost_plan_follows_the_interpreter():
    plan = resolve(debian12(python=python("3.13.1")), Options(boost_prefix="/opt/b/"))
    assert (plan.boost.prefix, plan.boost.include, plan.boost.lib) == (
        "/opt/b",
        "/opt/b/include",
        "/opt/b/lib",
    )
    assert plan.boost.python_lib == "boost_python313"
    system = resolve(debian12(), Options(boost_source="system")).boost
    assert system.prefix is None and system.include is None


def test_bad_plan_keys_are_refused():
    for data, key in (
        ({"pip_stack_venv": "venv"}, "pip_stack_venv"),
        ({"boost_source": "conda"}, "boost_source"),
        ({"preflight_python": " "}, "preflight_python"),
    ):
        with pytest.raises(CompatError, match=key):
            Options.from_data(data)
    assert Options.from_data({"pip_stack_venv": None}).venv is None


def test_no_interpreter_is_an_error_naming_the_key():
    assert "preflight_python" in errors_of(debian12(python=None))
