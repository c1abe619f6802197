"""Scaling past one process: worker processes sharing a port (workers) and the pub/sub
brokers that carry publishes between them (pubsub, Redis).

May import: verb.server, verb.core. It never imports verb.app: workers are given the coroutine
they run.
"""
