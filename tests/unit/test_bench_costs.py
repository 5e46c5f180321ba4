"""The pure helpers of bench/costs.py: py-spy stacks and perf samples into cost categories, µs per message."""

from __future__ import annotations

from bench.costs import attribute, classify, combine, parse_perf_script, perf_category, table, thread_names

PARSE = "RtmpConnection.receive_data (retake/ingest/rtmp/connection.py:120)"
DATA = "InputPath._data_received (retake/ingest/input_path.py:47)"
LOOP = "uv__io_poll (linux.c:1)"


def test_the_innermost_known_frame_decides() -> None:
    assert classify([LOOP, DATA, PARSE]) == "chunk parse"
    assert classify([LOOP, DATA]) == "loop dispatch"
    assert classify([LOOP, DATA, "CmafSegmenter._add_audio (retake/media/cmaf.py:260)"]) == "CMAF part"
    assert classify([LOOP, "uv__read (stream.c:1)", "read (libc.so.6)"]) == "kernel read"
    assert classify([LOOP, DATA, "HlsRecorder.on_part (retake/media/recording.py:9)"]) == "recorder"
    assert classify([LOOP, "Connection._execute (aiosqlite/core.py:1)"]) == "database"


def test_waits_are_idle_and_gc_and_previews_win_anywhere() -> None:
    assert classify([LOOP, "epoll_pwait (libc.so.6)"]) == "idle"
    assert classify(["_run (retake/media/recording.py:1)", "pthread_cond_timedwait (libc.so.6)", "0x7f (libc)"]) == (
        "idle"
    )
    assert classify([DATA, PARSE, "gc_collect_main (gcmodule.c:1)", "visit_decref (gcmodule.c:2)"]) == "GC"
    assert classify(
        ["PreviewService._make (retake/streams/previews.py:3)", "Connection._execute (aiosqlite/core.py:1)"]
    ) == ("previews")


def test_attribute_counts_one_thread_without_idle() -> None:
    raw = [
        f"thread (1): MainThread;{LOOP};{DATA};{PARSE} 7",
        f"thread (1): MainThread;{LOOP};epoll_pwait (libc.so.6) 50",
        "thread (2): retake-file-writer;_perform (retake/media/recording.py:1) 3",
    ]
    assert attribute(raw, "MainThread") == {"chunk parse": 7}
    assert attribute(raw) == {"chunk parse": 7, "recorder": 3}
    assert thread_names(raw) == {1: "MainThread", 2: "retake-file-writer"}


def test_perf_samples_by_syscall_and_thread() -> None:
    script = [
        " 3009 ",
        "\tffffffff81 tcp_recvmsg ([kernel.kallsyms])",
        "\tffffffff82 ksys_read ([kernel.kallsyms])",
        "\t7f00 read (/usr/lib/x86_64-linux-gnu/libc.so.6)",
        "",
        " 3009 ",
        "\t1aa032 _PyEval_EvalFrameDefault (/lib/libpython3.11.so.1.0)",
        "",
        " 3009 ",
        "\tffffffff83 ep_poll ([kernel.kallsyms])",
        "\tffffffff84 __x64_sys_epoll_pwait ([kernel.kallsyms])",
        "",
        " 3009 ",
        "\t1ab000 visit_decref (/lib/libpython3.11.so.1.0)",
        "",
        " 3314 ",
        "\tffffffff85 ext4_buffered_write_iter ([kernel.kallsyms])",
    ]
    samples = list(parse_perf_script(script))
    assert [tid for tid, _ in samples] == [3009, 3009, 3009, 3009, 3314]
    names = {3009: "MainThread", 3314: "retake-file-writer"}
    got = [perf_category(frames, names[tid]) for tid, frames in samples]
    assert got == ["kernel read", "user", "loop dispatch", "GC", "recorder"]


def test_combine_splits_user_time_like_py_spy_and_table_gives_us_per_message() -> None:
    combined = combine({"user": 80, "kernel read": 20}, {"chunk parse": 3, "FLV": 1, "kernel read": 100})
    assert combined == {"kernel read": 20.0, "chunk parse": 60.0, "FLV": 20.0}
    text = table(10.0, combined, 1000.0)  # 10 % of a core over 1,000 messages/s = 100 µs each
    assert "| chunk parse | 60.0 | 60.00 |" in text
    assert "| kernel read | 20.0 | 20.00 |" in text
    assert "100.00 |" in text.splitlines()[-1]
