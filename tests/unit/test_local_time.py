"""How an instant reads for people (engine/core/local_time.py): the deployment's zone, to the
second, with the offset, and text that reads back as the same instant."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from engine.core.local_time import display_zone, local
from engine.errors import SettingInvalid

BEIJING = display_zone("Asia/Shanghai")


def test_an_instant_reads_in_beijing_time_to_the_second_with_its_offset() -> None:
    # The example: 01:59:59 UTC is 09:59:59 in Beijing, inside an hour ending at 10:00.
    instant = datetime(2026, 2, 25, 1, 59, 59, 900_000, tzinfo=UTC)

    assert local(instant, BEIJING) == "2026-02-25 09:59:59+08:00"
    assert local(instant, display_zone("UTC")) == "2026-02-25 01:59:59+00:00"


def test_a_naive_instant_is_the_utc_svcflow_stores() -> None:
    assert local(datetime(2026, 2, 25, 1, 59, 59), BEIJING) == "2026-02-25 09:59:59+08:00"


def test_the_zone_defaults_to_beijing_and_an_unknown_one_is_refused() -> None:
    assert display_zone(None).key == display_zone("").key == "Asia/Shanghai"
    with pytest.raises(SettingInvalid) as caught:
        display_zone("Asia/Beijing")
    assert caught.value.message == "Asia/Beijing is not a time zone svcflow knows."
    assert "SVCFLOW_TIMEZONE" in (caught.value.hint or "")


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
    ),
    st.sampled_from(["Asia/Shanghai", "UTC", "Europe/Berlin", "America/New_York"]),
)
def test_what_people_read_is_the_same_instant_when_pasted_back(
    instant: datetime, zone_name: str
) -> None:
    text = local(instant, display_zone(zone_name))
    whole_seconds = instant.replace(microsecond=0)

    assert datetime.fromisoformat(text) == whole_seconds
    assert yaml.safe_load(f"at: {text}")["at"] == whole_seconds  # a scenario reads it too
