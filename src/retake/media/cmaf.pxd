# Types for the Cython build of cmaf.py (setup.py; the .py is the source and runs unchanged without it).
# The segmenter and its per-part state become extension types: their attributes are C struct fields and the
# per-frame helpers C methods, so a frame costs no attribute dict lookups or Python calls inside the module.
# Values that come from media timestamps stay Python ints (objects): any int the .py accepts still works,
# with the same results and errors. The public API (push, flush, init, the three public attributes) is
# unchanged; the private fields are readable from Python.
cimport cython
from retake.media.flv cimport audio_packet_type, video_header


@cython.final
cdef class _OpenPart:
    cdef public object start_ms
    cdef public list video
    cdef public list audio
    cdef public object video_base
    cdef public object audio_base
    cdef public bint independent
    cdef public object audio_samples

    cpdef bint empty(self)


@cython.final
cdef class _PendingVideo:
    cdef public object dts_ms
    cdef public object cts_ms
    cdef public object data
    cdef public bint is_key


@cython.final
cdef class CmafSegmenter:
    cdef public object segment_target_ms
    cdef public object part_target_ms
    cdef public object tracks
    cdef readonly object _video
    cdef readonly object _audio
    cdef readonly object _audio_config
    cdef readonly bint _config_changed
    cdef readonly object _init
    cdef readonly object _sequence
    cdef readonly _OpenPart _part
    cdef readonly object _segment_start_ms
    cdef readonly object _last_gop_ms
    cdef readonly object _last_key_ms
    cdef readonly _PendingVideo _pending
    cdef readonly object _frame_ms
    cdef readonly object _audio_next

    cdef readonly object _new_init(self)

    @cython.locals(key=bint)
    cdef list _push_video(self, object message)

    @cython.locals(pending=_PendingVideo)
    cdef void _advance(self, object t, list out) except *

    cdef readonly bint _should_cut(self, object t) except -1

    @cython.locals(pending=_PendingVideo)
    cdef void _commit_pending(self, object next_dts_ms) except *

    cdef list _push_audio(self, object message)

    @cython.locals(part=_OpenPart)
    cdef void _add_audio(self, object data, object ts_ms, object config) except *

    cdef list _push_audio_only(self, object data, object t, object config)

    @cython.locals(part=_OpenPart)
    cdef void _close_part(self, object end_ms, bint ends_segment, list out) except *
