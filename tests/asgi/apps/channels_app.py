"""A Django Channels app: an AsyncWebsocketConsumer group chat on the in-memory channel layer,
and one Django HTTP view (tests/asgi/test_asgi_channels.py runs it under each server)."""

import django
from django.conf import settings

settings.configure(
    DEBUG=False, SECRET_KEY="test only", ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
    INSTALLED_APPS=["channels"], USE_TZ=True,
    CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
)
django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402


class Chat(AsyncWebsocketConsumer):
    async def connect(self):
        self.room = self.scope["url_route"]["kwargs"]["room"]
        if self.room == "closed":
            await self.close(code=4003)
            return
        await self.channel_layer.group_add(self.room, self.channel_name)
        await self.accept()
        await self.send(text_data=f"joined {self.room}")

    async def disconnect(self, code):
        if self.room != "closed":
            await self.channel_layer.group_discard(self.room, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        if text_data == "bye":
            await self.close(code=4000)
            return
        await self.channel_layer.group_send(self.room, {"type": "chat.message",
                                                        "text": text_data})

    async def chat_message(self, event):
        await self.send(text_data=event["text"])


def hello(request):
    return JsonResponse({"hello": "django", "path": request.path})


urlpatterns = [path("hello", hello)]

application = ProtocolTypeRouter({
    "http": get_asgi_application(),
    "websocket": URLRouter([path("ws/chat/<str:room>", Chat.as_asgi())]),
})
