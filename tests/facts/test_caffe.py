"""CaffeBuildInputs: parsing captured output; the command quotes its arguments."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from pyinfra.api.exceptions import FactProcessError

from facts.caffe import CaffeBuildInputs, parse_build_inputs

CASES = sorted((Path(__file__).parent / "caffe").glob("*.json"))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_parse_captured_output(case):
    data = json.loads(case.read_text())
    assert parse_build_inputs(data["output"]) == data["fact"]


def test_cuda_toolkit_and_cudnn_versions():
    fact = parse_build_inputs(["os=debian-12", "nvcc=11.8", "cudnn=8.9.6", "python="])
    assert fact["nvcc"] == "11.8" and fact["cudnn"] == "8.9.6" and fact["python"] is None


def test_garbage_is_an_error():
    with pytest.raises(FactProcessError):
        parse_build_inputs(["sh: 1: syntax error"])
    with pytest.raises(FactProcessError):
        parse_build_inputs(["os=debian-12", "python={not json"])


def test_arguments_are_quoted():
    cmd = CaffeBuildInputs().command(
        python="python3; rm -rf /", cxx="g++", cuda_dir="/usr/local/cuda", cudnn_dir=""
    )
    words = shlex.split(cmd.get_raw_value())
    assert "python3; rm -rf /" in words
