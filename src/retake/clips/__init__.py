"""Clips: the last seconds of a live stream as an MP4 with a thumbnail, made from the recording on disk."""
