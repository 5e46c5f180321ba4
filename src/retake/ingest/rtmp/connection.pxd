# Types for the Cython build of connection.py (setup.py; the .py is the source and runs unchanged without it).
# RtmpConnection becomes an extension type: its fields are C struct slots, the chunk reader is typed (its
# next_raw a C call), and the per-read helpers are C methods. Every attribute the .py sets stays readable and
# writable from Python (public) except the private ones nobody outside reads; _reader is readonly (the RTMP
# fuzz test watches it). Counters and ids stay Python ints: same values and errors as the .py.
cimport cython
from retake.ingest.rtmp.chunk cimport ChunkReader


@cython.final
cdef class RtmpConnection:
    cdef public object config
    cdef public object state
    cdef object _handshake
    cdef readonly ChunkReader _reader
    cdef public object authorized
    cdef object _writer
    cdef object _out
    cdef object _events
    cdef object _error
    cdef public object app
    cdef public object publish_stream_id
    cdef object _next_stream_id
    cdef public object bytes_received
    cdef object _last_ack
    cdef object _ack_window
    cdef public object dropped_messages

    cdef void _receive(self, object data) except *

    cdef void _maybe_acknowledge(self) except *

    @cython.locals(reader=ChunkReader)
    cdef void _pump(self) except *
