"""Web pages (Jinja2 templates) and the front-end bundle built from ``web/src`` into ``static/dist``."""

from retake.server.web.pages import install_pages

__all__ = ["install_pages"]
