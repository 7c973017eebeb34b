"""Host data checks: unknown keys, near misses, wrong types."""

from __future__ import annotations

import pytest

from deploys.lib.data import DataError, check, known_keys, type_errors, unknown_keys


def test_known_and_foreign_keys_pass():
    data = {
        "apt_sources_deb_src": False,
        "ssh_user": "ubuntu",
        "_sudo": True,
        "my_own_key": 3,
    }
    assert unknown_keys(data) == []


def test_unknown_key_with_a_deploy_prefix_names_the_closest_key():
    errors = unknown_keys({"apt_sources_repo": []})
    assert errors == ["unknown data key 'apt_sources_repo'; did you mean 'apt_sources_repos'?"]


def test_near_miss_without_the_prefix_is_caught():
    errors = unknown_keys({"ldconfig_entires": {}, "ldconfg_entries": {}})
    assert len(errors) == 2
    assert all("'ldconfig_entries'" in e for e in errors)


def test_unknown_key_with_prefix_and_no_close_match():
    assert unknown_keys({"apt_sources_zzzzzzzzzzzz": 1}) == [
        "unknown data key 'apt_sources_zzzzzzzzzzzz'"
    ]


@pytest.mark.parametrize(
    ("value", "ok"),
    [(True, True), (False, True), (None, True), ("yes", False), (1, False)],
)
def test_bool_keys_take_bools_only(value, ok):
    errors = type_errors({"apt_sources_deb_src": value}, known_keys())
    assert (errors == []) is ok


def test_int_key_rejects_bool_and_float_key_takes_int():
    defaults = {"x_jobs": 2, "x_ratio": 1.5}
    assert type_errors({"x_jobs": True}, defaults)
    assert type_errors({"x_ratio": 3}, defaults) == []


def test_check_lists_every_problem_at_once():
    with pytest.raises(DataError) as e:
        check({"apt_sources_repo": [], "apt_sources_deb_src": "no"}, known_keys())
    assert "apt_sources_repo" in str(e.value)
    assert "apt_sources_deb_src' must be bool" in str(e.value)


def test_removed_keys_say_what_replaced_them():
    errors = unknown_keys({"caffe_python": "python3", "boost_cxx": "g++-11"})
    assert errors == [
        "data key 'boost_cxx' was removed: the plan's compiler: set toolchain_gcc",
        "data key 'caffe_python' was removed: the plan's interpreter: set preflight_python / "
        "pip_stack_venv",
    ]


def test_local_runtime_typos_are_caught_but_pyinfra_local_keys_pass():
    assert unknown_keys({"local_runtime_prot": 8888}) == [
        "unknown data key 'local_runtime_prot'; did you mean 'local_runtime_port'?"
    ]
    assert unknown_keys({"local_user": "x", "ssh_port": 22}) == []
