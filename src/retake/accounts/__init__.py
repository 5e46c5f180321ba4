"""Agent accounts: registration, verification, access tokens and RTMP keys."""
