"""verb: a Cython-accelerated WebSocket engine with the Verb framework's server API."""

__version__ = "0.1.0"
