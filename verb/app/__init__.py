"""The Verb API: create_server, routes and middleware (routing), app.websocket and listen
(app), and the Verb timers (timers).

May import: verb.server, verb.core, and verb.cluster (workers and brokers for listen).
"""
