"""Fleet logic: the host key policy rule and the per-host summary text."""

from __future__ import annotations

from deploys.lib.fleet import CONNECT_DETAIL, HostOutcome, format_summary, host_key_error


def test_strict_host_keys_pass():
    assert host_key_error("gpu-01", uses_ssh=True, strict="yes", insecure_ok=False) is None


def test_unset_or_lax_host_keys_are_refused_naming_the_keys():
    for strict in (None, "accept-new", "no", "off", "ask"):
        error = host_key_error("gpu-01", uses_ssh=True, strict=strict, insecure_ok=False)
        assert error is not None
        assert error.startswith("gpu-01: ")
        assert "ssh_strict_host_key_checking" in error and "fleet_insecure_host_keys" in error
    unset = host_key_error("gpu-01", uses_ssh=True, strict=None, insecure_ok=False)
    assert "accept-new" in unset


def test_explicit_opt_out_and_non_ssh_hosts_pass():
    assert host_key_error("s", uses_ssh=True, strict="accept-new", insecure_ok=True) is None
    assert host_key_error("@local", uses_ssh=False, strict=None, insecure_ok=False) is None


def test_summary_names_each_host_and_its_failed_step():
    text = format_summary(
        [
            HostOutcome("gpu-02", changed=3),
            HostOutcome("gpu-10", failed_step="connect", detail=CONNECT_DETAIL),
            HostOutcome("gpu-01"),
            HostOutcome("gpu-03", failed_step='"Build Boost"'),
        ]
    )
    assert text.splitlines() == [
        "--> dlrig fleet summary: 2 ok, 2 failed",
        "    gpu-01  ok      no changes",
        "    gpu-02  ok      3 changed",
        '    gpu-03  FAILED  at "Build Boost"',
        f"    gpu-10  FAILED  at connect: {CONNECT_DETAIL}",
    ]


def test_summary_of_no_hosts():
    assert format_summary([]) == "--> dlrig fleet summary: 0 ok, 0 failed\n"
