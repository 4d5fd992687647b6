"""The emulator answers as real Azure answered: every recording in ``../shared/recordings/`` is replayed.

Status, the headers that matter, the body's shape and an async operation's status value of every
interaction must match the recording, except the documented deviations listed (with their reasons) in
emulator/README.md — and every listed deviation must still occur, so the list can only shrink. Every
interaction of every recording is asserted (there is no pending list). See
tests/integration/emulator/replay.py for how the estate is built (DataProtection vaults, policies and the
state a recorded validateForBackup found included), how requests are sent and what "shape" means. The suite
prints its counts; emulator/README.md states them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.clock import ManualClock
from emulator.config import EmulatorConfig
from emulator.server import Emulator
from tests.integration.emulator.replay import (
    Deviation,
    Outcome,
    RawClient,
    Recording,
    estate_for,
    load_allowed_deviations,
    load_recordings,
    replay,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
RECORDINGS = ROOT.parent / "shared" / "recordings"
README = ROOT / "emulator" / "README.md"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
"""The emulator's subscription for ``$SUBSCRIPTION`` (the recordings' own subscription id)."""


@pytest.fixture(scope="module")
def recordings() -> list[Recording]:
    assert RECORDINGS.is_dir(), f"recorded Azure traffic not found at {RECORDINGS}"
    found = load_recordings(RECORDINGS)
    assert found, f"no recordings in {RECORDINGS}"
    return found


@pytest.fixture(scope="module")
def replay_emulator(recordings: list[Recording]) -> Iterator[tuple[Emulator, ManualClock]]:
    """An emulator of its own: default knobs (as Azure behaves, not test-speed) and a manual clock, so the
    recordings' pauses (``sleep_before_s``) are clock advances and nothing finishes early."""
    clock = ManualClock()
    estate = estate_for(recordings, default_subscription=SUBSCRIPTION)
    emu = Emulator.start(estate=estate, config=EmulatorConfig(), clock=clock)
    try:
        yield emu, clock
    finally:
        emu.stop()


def test_recorded_azure_traffic_replays_against_the_emulator(
    recordings: list[Recording],
    replay_emulator: tuple[Emulator, ManualClock],
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu, clock = replay_emulator
    client = RawClient(emu.base_url, emu.ca_bundle)
    allowed = load_allowed_deviations(README)
    outcomes: list[Outcome] = []
    for recording in recordings:
        emu.reset()
        outcomes += replay(recording, client, advance_clock=clock.advance, subscription=SUBSCRIPTION)

    replayed = [o for o in outcomes if not o.interaction.supplementary]
    found: list[Deviation] = [d for o in outcomes for d in o.deviations]
    unexpected = [d for d in found if not any(row.covers(d) for row in allowed)]
    stale = [row for row in allowed if not any(row.covers(d) for d in found)]
    allowed_seen = [d for d in found if any(row.covers(d) for row in allowed)]
    supplementary_sent = sum(1 for o in outcomes if o.interaction.supplementary and o.sent)

    with capsys.disabled():
        print(
            f"\nrecorded-traffic replay: {len(recordings)} recordings, "
            f"{len(replayed)} interactions replayed, "
            f"{len(allowed)} allowed deviations ({len(allowed_seen)} differences they cover), "
            f"{supplementary_sent} supplementary steps sent"
        )
        for recording in recordings:
            mine = [o for o in replayed if o.interaction.recording == recording.name]
            print(
                f"  {recording.name}: {len(mine)} interactions, "
                f"{sum(1 for o in mine if o.deviations)} with allowed deviations"
            )

    assert {r.name for r in recordings} == {p.stem for p in RECORDINGS.glob("*.json")}, "every file replayed"
    assert not unexpected, "the emulator answers differently from recorded Azure traffic:\n" + "\n".join(
        map(str, unexpected)
    )
    assert not stale, (
        "documented deviations that no longer occur (remove them from emulator/README.md):\n"
        + ("\n".join(f"{row.recording} / {sorted(row.interactions)} / {sorted(row.places)}" for row in stale))
    )
    assert all(o.sent for o in replayed), "every interaction was sent"
