"""The pandas time axis: formats read, frequencies inferred, future stamps on calendar offsets, one-line errors."""

from __future__ import annotations

import pytest

from seqlit.data.forecasting.time_axis import TimeAxis
from seqlit.errors import InputError


def future(cells: list[str], count: int = 3, fmt: str | None = None) -> list[str]:
    return TimeAxis(cells, "t", fmt).future(count)


def test_month_end_stays_on_month_ends():
    assert future(["2024-01-31", "2024-02-29", "2024-03-31"]) == ["2024-04-30", "2024-05-31", "2024-06-30"]


def test_quarter_end_does_not_drift():
    cells = ["2023-03-31", "2023-06-30", "2023-09-30", "2023-12-31"]
    assert future(cells, 4) == ["2024-03-31", "2024-06-30", "2024-09-30", "2024-12-31"]


def test_business_days_skip_the_weekend():
    cells = ["2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08", "2024-01-09"]  # Wed..Fri, Mon, Tue
    assert future(cells, 4) == ["2024-01-10", "2024-01-11", "2024-01-12", "2024-01-15"]


def test_half_hourly_across_a_dst_change_steps_in_real_time():
    # Europe/Berlin falls back at 03:00 CEST on 2024-10-27: 02:00 and 02:30 happen twice, with different offsets
    cells = ["2024-10-27T02:00:00+02:00", "2024-10-27T02:30:00+02:00", "2024-10-27T02:00:00+01:00",
             "2024-10-27T02:30:00+01:00"]  # fmt: skip
    axis = TimeAxis(cells, "t", None)  # strictly increasing as instants, though not as wall-clock times
    assert axis.future(2) == ["2024-10-27T03:00:00+01:00", "2024-10-27T03:30:00+01:00"]
    spring = ["2024-03-31T01:00:00+01:00", "2024-03-31T01:30:00+01:00", "2024-03-31T03:00:00+02:00"]
    assert future(spring, 1) == ["2024-03-31T03:30:00+02:00"]  # 01:30 CET to 03:00 CEST is 30 minutes


def test_month_names_quarters_and_dotted_days():
    assert future(["1939 Jan", "1939 Feb", "1939 Mar"], 2) == ["1939 Apr", "1939 May"]
    assert future(["1998 Q3", "1998 Q4", "1999 Q1"], 2) == ["1999 Q2", "1999 Q3"]
    assert future(["30.01.2024", "31.01.2024"], 2) == ["01.02.2024", "02.02.2024"]
    assert future(["01/2024", "02/2024", "03/2024"], 1, fmt="%m/%Y") == ["04/2024"]
    assert TimeAxis(["1983-11", "1983-12"], "t", None).label(4) == "1984-03"  # two rows: still whole months
    assert future(["1990", "1992", "1994"], 2) == ["1996", "1998"]


def test_most_common_step_without_a_frequency():
    cells = ["2024-01-01 00:00", "2024-01-01 00:10", "2024-01-01 00:20", "2024-01-01 00:35"]  # irregular
    assert future(cells, 1) == ["2024-01-01 00:45"]


@pytest.mark.parametrize(
    ("cells", "match"),
    [
        (["2024-01-01", "2024-01-02", "yesterday"], r"'yesterday' in data row 3, which is not a time"),
        (["1998 Q1", "1998 Q5"], r"'1998 Q5' in data row 2"),
        (["2024-01-02", "2024-01-01"], r"'2024-01-01' in data row 2 is earlier than '2024-01-02' in data row 1"),
        (["2024-01-01", "2024-01-01"], r"in data row 2 is a duplicate of '2024-01-01' in data row 1"),
    ],
)
def test_bad_times_are_one_line(cells, match):
    with pytest.raises(InputError, match=match):
        TimeAxis(cells, "t", None)


def test_a_given_format_that_does_not_fit_names_the_cell():
    with pytest.raises(InputError, match=r"'2024-13' in data row 2.*time_format='%Y-%m'"):
        TimeAxis(["2024-12", "2024-13"], "t", "%Y-%m")
