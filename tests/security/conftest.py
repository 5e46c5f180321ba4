from tests.e2e.conftest import oembed_server, server
from tests.ingest.conftest import make_server

__all__ = ["make_server", "oembed_server", "server"]
