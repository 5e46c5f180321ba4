"""What the ingest and the media layer share: the media message, AMF0, and the codec headers.

A leaf: it imports nothing of the project. ``retake.ingest`` emits :class:`~retake.av.message.MediaMessage`
and hands it to one synchronous hook; ``retake.media`` (FLV fan-out, CMAF/LL-HLS, recording) consumes it and
reads the stream's codec headers from one :class:`~retake.av.headers.Tracks`, parsed once per sequence header.
"""
