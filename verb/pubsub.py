"""`verb.pubsub`: the documented path of the broker API (custom brokers subclass `Broker`);
it lives in `verb.cluster.pubsub`."""

from verb.cluster.pubsub import (  # noqa: F401
    Broker,
    BrokerLink,
    BrokerUnavailable,
    InProcessBroker,
    RedisBroker,
    broker_from_url,
)
from verb.cluster.pubsub import __all__  # noqa: F401
