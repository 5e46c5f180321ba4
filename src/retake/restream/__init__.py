"""Restream: while an agent is live, the node holding its publisher pushes the stream, unchanged, to the agent's
other platforms over RTMP(S) (:mod:`retake.ingest.push`), each destination with its own bounded queue and
reconnect back-off. Destination keys are stored encrypted (:mod:`retake.restream.keybox`)."""
