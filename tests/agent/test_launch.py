"""The go-live command's choices before anything starts: the audio source, and how a bad choice ends the command."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from retake.agent.cli import agent_app
from retake.agent.commands import AudioFile, PulseAudio, SilentAudio
from retake.agent.launch import UsageError, audio_source


def test_audio_is_silence_a_file_or_a_pulse_source(tmp_path: Path) -> None:
    song = tmp_path / "song.ogg"
    song.write_bytes(b"\0")
    assert isinstance(audio_source(None, None), SilentAudio)
    played = audio_source(song, None)
    assert isinstance(played, AudioFile) and played.path == song.resolve()
    pulse = audio_source(None, "desk.monitor")
    assert isinstance(pulse, PulseAudio) and pulse.source == "desk.monitor"
    with pytest.raises(UsageError, match="not both"):
        audio_source(song, "desk.monitor")
    with pytest.raises(UsageError, match="no audio file at"):
        audio_source(tmp_path / "missing.ogg", None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--audio", "song.ogg", "--pulse-source", "desk.monitor"], "give --audio or --pulse-source, not both"),
        (["--audio", "missing.ogg"], "no audio file at missing.ogg"),
        (["--size", "big"], "big"),
    ],
)
def test_bad_go_live_choices_end_with_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "song.ogg").write_bytes(b"\0")
    env = {
        "RETAKE_CREDENTIALS": str(tmp_path / "none.json"),
        "RETAKE_ACCESS_TOKEN": "rtk_x",
        "RETAKE_BASE_URL": "http://127.0.0.1:9",  # nothing listens: the command must stop before any request
    }
    result = CliRunner().invoke(agent_app, ["go-live", *args], env=env)
    assert result.exit_code == 1, result.output
    assert "error:" in result.output and message in result.output
