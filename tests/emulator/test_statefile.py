"""The emulator's world kept on disk (`state_dir`, make run's var/emulator): a restarted
emulator knows its users, their threads and its clock; a lost or foreign file gives a new
world whose PSIDs no earlier world had."""

from __future__ import annotations

import json
from pathlib import Path

from tests.emulator.support import HELPDESK, HELPDESK_SECRET, HELPDESK_TOKEN, HOUR, PAGE
from webhooks.emulator import Emulator, EmulatorConfig
from webhooks.emulator.platform import appsecret_proof


def demo(port: int = 0) -> EmulatorConfig:
    """make run's setup: the demo page, bot and helpdesk (no callback), Ada and Alan."""
    return EmulatorConfig.demo(port=port, helpdesk_callback_url=None)


def helpdesk_takes(emulator: Emulator, psid: str) -> None:
    result = emulator.graph_call(
        "POST",
        "/me/request_thread_control",
        {"recipient": {"id": psid}},
        access_token=HELPDESK_TOKEN,
        appsecret_proof=appsecret_proof(HELPDESK_SECRET, HELPDESK_TOKEN),
    )
    assert result.status == 200, result.body


def world(emulator: Emulator) -> dict:
    """What a restart must keep, as the emulator's own API shows it."""
    state = emulator.state()
    return {
        "users": state["users"],
        "threads": state["threads"],
        "transcripts": {
            (t["page_id"], t["psid"]): emulator.transcript(t["psid"]) for t in state["threads"]
        },
        "clock_offset_seconds": state["clock_offset_seconds"],
    }


def test_a_restarted_emulator_keeps_its_users_threads_and_clock(tmp_path):
    # Given a world with a new user who talked to the bot, asked for a human (the bot
    # passed the thread to the helpdesk), and a clock moved forward.
    with Emulator(demo(), state_dir=tmp_path) as first:
        grace = first.user_create("Grace", "Hopper")
        first.user_says(grace.psid, "hello")
        assert first.wait_idle()
        first.user_taps_button(grace.psid, first.transcript(grace.psid)[-1]["mid"], 0)
        assert first.wait_idle()
        helpdesk_takes(first, grace.psid)
        assert first.wait_idle()
        first.advance_clock(5 * HOUR)
        before = world(first)
        port = int(first.base_url.rsplit(":", 1)[1])
    assert first.owner(grace.psid) == HELPDESK
    assert len(before["users"]) == 3

    # When the emulator starts again on the same directory (and port: profile_pic).
    with Emulator(demo(port), state_dir=tmp_path) as second:
        # Then it is the same world: users, owners, transcripts, clock.
        assert world(second) == before
        assert second.owner(grace.psid) == HELPDESK
        # And it goes on from there: the next user and message never reuse an id.
        alan = second.user_create("Alan", "Kay")
        assert alan.psid not in {u["psid"] for u in before["users"]}
        entry = second.user_says(grace.psid, "still there?")
        assert entry["seq"] > max(e["seq"] for e in before["transcripts"][(PAGE, grace.psid)])


def test_the_clock_file_says_how_far_the_clock_was_moved(tmp_path):
    with Emulator(demo(), state_dir=tmp_path) as emulator:
        assert json.loads((tmp_path / "clock.json").read_text()) == {"offset_seconds": 0.0}

        emulator.advance_clock(23 * HOUR)

        assert json.loads((tmp_path / "clock.json").read_text()) == {"offset_seconds": 82800.0}


def test_a_new_world_has_psids_no_other_world_had(tmp_path):
    first = {u.psid for u in Emulator(demo(), state_dir=tmp_path / "a").platform.users.values()}
    second = {u.psid for u in Emulator(demo(), state_dir=tmp_path / "b").platform.users.values()}
    in_memory = {u.psid for u in Emulator(demo()).platform.users.values()}

    assert len(first) == len(second) == 2
    assert first.isdisjoint(second)
    # Without a directory nothing changes: the tests' ids stay as they were.
    assert in_memory == {"3100000000000001", "3100000000000002"}


def _saved_psids(directory: Path) -> set[str]:
    data = json.loads((directory / "state.json").read_text())
    return {u["psid"] for u in data["users"]}


def test_a_broken_file_is_moved_aside_and_a_new_world_begins(tmp_path, caplog):
    Emulator(demo(), state_dir=tmp_path)
    old = _saved_psids(tmp_path)
    (tmp_path / "state.json").write_text('{"version": 1, "world": ')

    emulator = Emulator(demo(), state_dir=tmp_path)

    assert (tmp_path / "state.json.old").read_text() == '{"version": 1, "world": '
    assert _saved_psids(tmp_path) == {u.psid for u in emulator.platform.users.values()}
    assert _saved_psids(tmp_path).isdisjoint(old)
    assert f"{tmp_path / 'state.json'} is not a JSON object; moved to state.json.old" in (
        caplog.text
    )


def test_a_file_of_another_setup_or_shape_is_not_used(tmp_path):
    Emulator(demo(), state_dir=tmp_path)
    old = _saved_psids(tmp_path)

    other_page = EmulatorConfig.demo(port=0, helpdesk_callback_url=None, page_id="1000000000000009")
    Emulator(other_page, state_dir=tmp_path)
    assert _saved_psids(tmp_path).isdisjoint(old)

    data = json.loads((tmp_path / "state.json").read_text())
    data["threads"][0]["colour"] = "blue"  # a field no thread has
    (tmp_path / "state.json").write_text(json.dumps(data))
    emulator = Emulator(other_page, state_dir=tmp_path)
    assert {u.psid for u in emulator.platform.users.values()}.isdisjoint(
        {u["psid"] for u in data["users"]}
    )


def test_nothing_is_written_without_a_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with Emulator(demo()) as emulator:
        emulator.user_says(emulator.state()["users"][0]["psid"], "hello")
        emulator.advance_clock(HOUR)

    assert list(tmp_path.iterdir()) == []


def test_a_page_switched_to_zero_config_keeps_its_world_and_default_app_on_restart(tmp_path):
    # Given a world whose page was switched to zero-config on the control page, and a
    # token reissued and a fault set there.
    with Emulator(demo(), state_dir=tmp_path) as first:
        grace = first.user_create("Grace", "Hopper")
        first.user_says(grace.psid, "hello")
        assert first.wait_idle()
        first.page_mode_set("cr-zero-config")
        first.page_restrict()
        first.token_reissue(HELPDESK)
    # When it restarts with the command line's setup (cr, the bot as default app),
    second = Emulator(demo(), state_dir=tmp_path)
    # then the world is kept, the page is as the command line says, and the faults and
    # the reissued token are gone (the command line's token works again).
    assert grace.psid in [u["psid"] for u in second.state()["users"]]
    [page] = second.state()["pages"]
    assert (page["mode"], page["primary_app_id"], page["restricted"]) == (
        "cr",
        "200000000000002",
        False,
    )
    ok = second.graph_call(
        "GET",
        "/me",
        {},
        access_token=HELPDESK_TOKEN,
        appsecret_proof=appsecret_proof(HELPDESK_SECRET, HELPDESK_TOKEN),
    )
    assert ok.status == 200
    assert not (tmp_path / "state.json.old").exists()
