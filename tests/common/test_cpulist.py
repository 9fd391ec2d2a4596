"""One CPU-list notation for the kernel, libvirt, nvidia-smi and the console."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coupler_common.cpulist import CpuListError, format_cpulist, parse_cpulist


def test_it_reads_the_kernels_lists():
    assert parse_cpulist("0-3,8-11\n") == {0, 1, 2, 3, 8, 9, 10, 11}
    assert parse_cpulist("5") == {5}
    assert parse_cpulist("48-51, 60") == {48, 49, 50, 51, 60}


def test_empty_and_no_affinity_are_no_cores():
    assert parse_cpulist("") == parse_cpulist(None) == parse_cpulist("N/A") == frozenset()


def test_libvirts_exclusions_only_when_asked():
    assert parse_cpulist("48-51,60,^50", allow_exclusions=True) == {48, 49, 51, 60}
    with pytest.raises(CpuListError):
        parse_cpulist("48-51,^50")


@pytest.mark.parametrize("text", ["3-1", "a", "1-", "0-3;5", "-1"])
def test_it_refuses_what_is_not_a_list(text):
    with pytest.raises(CpuListError, match="CPU"):
        parse_cpulist(text)


def test_it_writes_runs_as_ranges():
    assert format_cpulist([3, 1, 2, 7, 9, 10, 2]) == "1-3,7,9-10"
    assert format_cpulist(range(0, 16)) == "0-15"
    assert format_cpulist([]) == ""


@given(st.sets(st.integers(min_value=0, max_value=511)))
def test_writing_then_reading_gives_the_same_cores(cores):
    assert parse_cpulist(format_cpulist(cores)) == cores
