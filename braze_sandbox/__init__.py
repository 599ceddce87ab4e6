"""A local stand-in for Braze's REST API, run as its own process (see README.md).

The console never imports this package; it only talks to the running server over HTTP.
"""

__all__: list[str] = []
