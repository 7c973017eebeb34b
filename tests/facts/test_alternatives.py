"""facts.alternatives: parsing real ``update-alternatives --query`` output (Debian 12)."""

from __future__ import annotations

from facts.alternatives import GccMajor, parse_query

QUERY_GCC = """\
Name: gcc
Link: /usr/bin/gcc
Slaves:
 g++ /usr/bin/g++
Status: manual
Best: /usr/bin/gcc-12
Value: /usr/bin/gcc-12

Alternative: /usr/bin/gcc-11
Priority: 110
Slaves:
 g++ /usr/bin/g++-11

Alternative: /usr/bin/gcc-12
Priority: 120
Slaves:
 g++ /usr/bin/g++-12
""".splitlines()


def test_parse_group():
    got = parse_query(QUERY_GCC)
    assert got == {
        "name": "gcc",
        "link": "/usr/bin/gcc",
        "status": "manual",
        "best": "/usr/bin/gcc-12",
        "value": "/usr/bin/gcc-12",
        "slaves": {"g++": "/usr/bin/g++"},
        "alternatives": {
            "/usr/bin/gcc-11": {"priority": 110, "slaves": {"g++": "/usr/bin/g++-11"}},
            "/usr/bin/gcc-12": {"priority": 120, "slaves": {"g++": "/usr/bin/g++-12"}},
        },
    }


def test_missing_group_and_value_none():
    assert parse_query([]) is None
    lines = ["Name: cc", "Link: /usr/bin/cc", "Status: auto", "Best: /usr/bin/gcc", "Value: none"]
    got = parse_query(lines)
    assert got is not None and got["value"] is None and got["alternatives"] == {}


def test_gcc_major():
    fact = GccMajor()
    assert fact.process(["12"]) == 12
    assert fact.process(["11.3.0"]) == 11
    assert fact.process([]) is None
