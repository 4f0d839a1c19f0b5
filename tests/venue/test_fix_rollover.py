"""Kraken's daily FIX rollover (facts 5: 22:00 UTC, ~30 s, sequence numbers reset): a bad
rollover time is refused by name. The rollover itself, against a venue process whose day ends
two seconds from now (it logs every session out, refuses Logons while the rollover
lasts, then numbers sessions from 1 again; the traders' FixClient logs on afresh after it."""

from __future__ import annotations

import pytest

from loadgen.venue.app import VenueConfig, VenueConfigError


@pytest.mark.parametrize("bad", ["25:00", "22", "10:6", "noon"])
def test_a_bad_rollover_time_is_refused_by_name(bad):
    with pytest.raises(VenueConfigError, match=rf"FIX rollover time '{bad}'"):
        VenueConfig(keys=1, pairs=1, keys_file=None, fix_rollover=bad).validate()
