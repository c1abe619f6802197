"""Live data feeds over topics (the Verb WebSocket guide, "Live Data Feeds").

Three feeds publish on their own topic every FEED_INTERVAL_MS milliseconds (env
FEED_INTERVAL_MS, default 1000); each update reaches only that topic's subscribers:
    {"type": "update", "topic": "stocks"|"news"|"weather", "data": {...}, "timestamp": <ms>}
Clients send:
    {"type": "subscribe", "topic": t}   -> {"type": "subscribed", "topic": t}
    {"type": "unsubscribe", "topic": t} -> {"type": "unsubscribed", "topic": t}
    {"type": "getTopics"}               -> {"type": "topics", "topics": [every feed],
                                            "subscribed": [the client's feeds]}
Errors come back as {"type": "error", "message": ...}.

The publishers are started with `set_interval` at module level, before `app.listen`: they start
with the server and run on its event loop.

    python examples/live_feed.py     # or: verb run examples/live_feed.py
"""

import json
import os
import random
import time

from verb import ServerProtocol, create_server, set_interval

FEED_INTERVAL_MS = int(os.environ.get("FEED_INTERVAL_MS", "1000"))
TOPICS = ("stocks", "news", "weather")

app = create_server(ServerProtocol.WEBSOCKET)

prices = {"AAPL": 190.0, "GOOGL": 140.0, "MSFT": 410.0, "TSLA": 250.0}
headlines = ["Markets open higher", "New WebSocket engine released", "Rain expected tomorrow"]
cities = ["London", "New York", "Tokyo"]


def now_ms():
    return int(time.time() * 1000)


def publish_update(topic, data):
    # Skip the work when nobody listens; publish itself only reaches subscribers.
    if app.subscriber_count(topic):
        app.publish(topic, json.dumps(
            {"type": "update", "topic": topic, "data": data, "timestamp": now_ms()}))


def publish_stocks():
    for symbol, price in prices.items():
        prices[symbol] = round(max(1.0, price + random.uniform(-5, 5)), 2)
    publish_update("stocks", dict(prices))


def publish_news():
    publish_update("news", {"headline": random.choice(headlines)})


def publish_weather():
    publish_update("weather", {"city": random.choice(cities),
                               "temperature": round(random.uniform(-5, 35), 1)})


# Started now if a loop runs, else when the server starts (before app.listen, as in the guide).
feed_timers = [
    set_interval(publish_stocks, FEED_INTERVAL_MS),
    set_interval(publish_news, FEED_INTERVAL_MS),
    set_interval(publish_weather, FEED_INTERVAL_MS),
]


def on_open(ws):
    ws.send_json({"type": "welcome", "topics": list(TOPICS)})


def on_message(ws, message):
    try:
        data = json.loads(message)
    except ValueError:
        ws.send_json({"type": "error", "message": "Invalid JSON"})
        return
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "getTopics":
        ws.send_json({"type": "topics", "topics": list(TOPICS),
                      "subscribed": [t for t in TOPICS if ws.is_subscribed(t)]})
    elif kind in ("subscribe", "unsubscribe"):
        topic = data.get("topic")
        if topic not in TOPICS:
            ws.send_json({"type": "error", "message": f"Unknown topic: {topic}"})
        elif kind == "subscribe":
            ws.subscribe(topic)
            ws.send_json({"type": "subscribed", "topic": topic})
        else:
            ws.unsubscribe(topic)
            ws.send_json({"type": "unsubscribed", "topic": topic})
    else:
        ws.send_json({"type": "error", "message": "Unknown message type"})


app.websocket(open=on_open, message=on_message)

if __name__ == "__main__":
    app.listen(3000)
