"""Chat: one service for REST and Socket.IO, so a message has the same id and fields everywhere."""
