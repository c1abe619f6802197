"""The WebSocket client: connect and reconnecting (client), on a compiled connection
(_client) over the same frame core as the server.

May import: verb.core, and verb.server's transport helpers (_transport.pxd).
"""
