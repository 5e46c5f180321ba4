"""The operator console at ``/admin`` (README "Operator console")."""

from retake.server.console.routes import router

__all__ = ["router"]
