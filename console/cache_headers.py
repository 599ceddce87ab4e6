"""No response of the console is kept by a browser or a shared cache."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import add_never_cache_headers


class NoStoreMiddleware:
    """Every response the console builds carries Django's never-cache headers
    (``Cache-Control: max-age=0, no-cache, no-store, must-revalidate, private``).

    Pages show staff emails and names, dashboard users' Braze permissions, audit entries and
    unpublished content: a copy on the disk of a shared computer, or in a proxy's cache,
    outlives signing out and the idle timeout. Also, an htmx fragment and the page at the same
    URL differ only by request headers, so a stored fragment could come back as a page on Back.
    All of them, not a list of "personal" pages, so that a new screen cannot forget it.

    Static files are not affected: WhiteNoise answers them before this middleware runs.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        add_never_cache_headers(response)
        return response
