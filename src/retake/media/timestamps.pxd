# Types for the Cython build of timestamps.py (setup.py; the .py is the source and runs unchanged without it).
# TimestampRepair becomes a final extension type: its fields are C struct slots (all still readable and
# writable from Python: a test sets _last) and the unwrap step a C method. Timestamps stay Python ints, so
# any value the .py takes gives the same result. is_config_payload is also a C function for the module.
cimport cython


cpdef bint is_config_payload(object message) except -1


@cython.final
cdef class TimestampRepair:
    cdef public object max_backward_ms
    cdef public object max_forward_gap_ms
    cdef public object discontinuities
    cdef public object _offset
    cdef public dict _last
    cdef public dict _step
    cdef public bint _reanchor
    cdef public object _raw
    cdef public object _unwrapped

    cdef object _unwrap(self, object ts)

    @cython.locals(jumped=bint)
    cpdef object repair(self, object message)
