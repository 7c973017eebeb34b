"""datasets_items checks and the marker that records a verified download."""

from __future__ import annotations

import pytest

from deploys.lib.datasets import Dataset, marker_matches, parse_items

SHA = "ab" * 32


def _item(**kw):
    base = {"name": "voc", "url": "https://example.org/voc.tar", "sha256": SHA, "dest": "/d/voc"}
    return {**base, **kw}


def test_valid_item_is_normalised():
    (item,) = parse_items([_item(sha256=SHA.upper(), dest="/d//voc/", extract="tar")])
    assert item == Dataset("voc", "https://example.org/voc.tar", SHA, "/d/voc", "tar")
    assert item.marker == "/d/.voc.dlrig-dataset"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"url": "ftp://x/y"}, "'url'"),
        ({"sha256": "abc"}, "'sha256'"),
        ({"dest": "data/voc"}, "'dest'"),
        ({"dest": "/"}, "'dest'"),
        ({"dest": "/d/../etc"}, "'..'"),
        ({"extract": "rar"}, "'extract'"),
        ({"name": "../x"}, "'name'"),
        ({"checksum": SHA}, "unknown field"),
    ],
)
def test_bad_fields_are_named(change, message):
    with pytest.raises(ValueError, match=r"datasets_items\[0\]") as err:
        parse_items([_item(**change)])
    assert message in str(err.value)


def test_duplicates_and_nesting_are_refused():
    with pytest.raises(ValueError, match="name 'voc' repeats"):
        parse_items([_item(), _item(dest="/d/other")])
    with pytest.raises(ValueError, match="dest '/d/voc' repeats"):
        parse_items([_item(), _item(name="b")])
    with pytest.raises(ValueError, match="lies inside"):
        parse_items([_item(), _item(name="b", dest="/d/voc/sub")])
    with pytest.raises(ValueError, match="must be a list"):
        parse_items({"voc": _item()})


def test_marker_must_record_the_same_sha256_and_kind():
    (item,) = parse_items([_item(extract="tar")])
    assert marker_matches(item, [f"sha256={SHA}", "extract=tar"])
    assert not marker_matches(item, None)
    assert not marker_matches(item, [f"sha256={'cd' * 32}", "extract=tar"])
    assert not marker_matches(item, [f"sha256={SHA}", "extract=zip"])
