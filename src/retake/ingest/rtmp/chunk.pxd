# Types for the Cython build of chunk.py (setup.py; the .py is the source and runs unchanged without it).
# ChunkReader and its per-csid state become extension types with C-typed fields, and the per-chunk helpers
# C methods; the public API (attributes, properties, next_raw/next_message/feed) stays what chunk.py says.
cimport cython


cdef class _InStream:
    cdef public long long timestamp
    cdef public long long delta
    cdef public Py_ssize_t length
    cdef public int type_id
    cdef public long long stream_id
    cdef public bint extended
    cdef public long long extended_value
    cdef public bint active
    cdef public Py_ssize_t received
    cdef public object partial


cdef class ChunkReader:
    cdef public Py_ssize_t max_message_size
    cdef public Py_ssize_t max_chunk_streams
    cdef public Py_ssize_t max_buffered
    cdef public long long budget
    cdef public list header_counts
    cdef public Py_ssize_t extended_type3_chunks
    cdef Py_ssize_t _chunk_size
    cdef object _buf
    cdef Py_ssize_t _pos
    cdef dict _streams
    cdef _InStream _current
    cdef int _current_csid
    cdef int _continuation
    cdef Py_ssize_t _chunk_left
    cdef readonly Py_ssize_t _buffered  # read by tests/security/test_rtmp_fuzz.py (bounded partial input)

    cpdef tuple next_raw(self)

    cdef void _compact(self)

    @cython.locals(pos=Py_ssize_t, end=Py_ssize_t, p=Py_ssize_t, first=int, fmt=int, csid=int,
                   header_end=Py_ssize_t, stream=_InStream, left=Py_ssize_t)
    cdef bint _read_chunk_header(self) except -1

    @cython.locals(type_id=int, length=Py_ssize_t, ts_high=int, ts_low=int, length_high=int, length_low=int,
                   ts_value=cython.longlong, extended=bint)
    cdef tuple _full_header(self, int fmt, int csid, _InStream stream, Py_ssize_t p, Py_ssize_t header_end)

    cdef tuple _type3_header(self, _InStream stream, Py_ssize_t header_end)

    cdef int _start_message(self, _InStream stream) except -1

    @cython.locals(stream=_InStream, pos=Py_ssize_t, end=Py_ssize_t, chunk_left=Py_ssize_t, take=Py_ssize_t,
                   received=Py_ssize_t, left=Py_ssize_t, type_id=int)
    cdef tuple _read_payload(self)

    cdef int _apply_control(self, int type_id, bytes payload) except -1
