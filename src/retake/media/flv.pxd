# Types for the Cython build of flv.py (setup.py; the .py is the source and runs unchanged without it).
# The per-frame helpers become C functions with C-typed locals (callable from Python as before, and
# cimported by cmaf.pxd); their arguments stay Python objects, so they accept and reject what the .py does.
cimport cython


@cython.locals(size=Py_ssize_t, ts=cython.ulonglong)
cpdef bytes tag_bytes(object tag_type, object timestamp_ms, object payload)

@cython.locals(first=cython.long, frame_type=cython.long, codec_id=cython.long)
cpdef tuple video_header(object payload)

@cython.locals(sound_format=cython.long)
cpdef object audio_packet_type(object payload)
