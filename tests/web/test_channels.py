"""The Channels side of the ASGI application and the Redis channel layer."""

from __future__ import annotations

from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator


async def test_channel_layer_round_trip_through_redis() -> None:
    layer = get_channel_layer()
    assert layer is not None
    channel = await layer.new_channel()
    try:
        await layer.send(channel, {"type": "console.hello", "text": "안녕하세요"})

        assert await layer.receive(channel) == {"type": "console.hello", "text": "안녕하세요"}
    finally:
        await layer.close_pools()


async def test_websocket_from_a_foreign_origin_is_refused() -> None:
    from webconsole.asgi import application

    communicator = WebsocketCommunicator(application, "/ws/", headers=[(b"origin", b"https://evil.example")])
    connected, _ = await communicator.connect()

    assert connected is False
    await communicator.disconnect()
