# Types for the Cython build of connection.py (setup.py; the .py is the source and runs unchanged without it).
# RtmpConnection becomes an extension type: its fields are C struct slots, the chunk reader is typed (its
# next_raw a C call), and the per-read helpers are C methods. The public attributes stay readable and
# writable from Python, the private ones readable (tests look at _reader and _writer). Counters and ids stay
# Python ints: same values and errors as the .py.
cimport cython
from retake.ingest.rtmp.chunk cimport ChunkReader


@cython.final
cdef class RtmpConnection:
    cdef public object config
    cdef public object state
    cdef readonly object _handshake
    cdef readonly ChunkReader _reader
    cdef public object authorized
    cdef readonly object _writer
    cdef readonly object _out
    cdef readonly object _events
    cdef readonly object _error
    cdef public object app
    cdef public object publish_stream_id
    cdef readonly object _next_stream_id
    cdef public object bytes_received
    cdef readonly object _last_ack
    cdef readonly object _ack_window
    cdef public object dropped_messages

    cdef void _receive(self, object data) except *

    cdef void _maybe_acknowledge(self) except *

    # cost is what reader.budget (a C long long) is lowered by: the same conversion, once per call.
    @cython.locals(reader=ChunkReader, raw=tuple, cost=cython.longlong)
    cdef void _pump(self) except *
