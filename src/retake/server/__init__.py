"""The ASGI application: API, Socket.IO, pages and playback, plus the RTMP listener in its lifespan."""
