from tests.e2e.conftest import oembed_server, server

__all__ = ["oembed_server", "server"]
