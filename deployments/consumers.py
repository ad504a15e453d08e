"""The war-room websocket: one group per deployment, joined only after a permission check."""

from __future__ import annotations

import asyncio
import json
import logging

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from deployments import live, presence
from deployments.permissions import access_for, visible_deployments

log = logging.getLogger(__name__)


class DeploymentConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        self.deployment_id = self.scope["url_route"]["kwargs"]["pk"]
        self.group = None
        self.revoked = False
        self.beat = None
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        if not await self._may_view(user):
            # Same answer for unknown and forbidden: nothing to probe.
            await self.close(code=4404)
            return
        self.group = live.group_name(self.deployment_id)
        self.viewer_group = live.viewer_group(self.deployment_id, user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.channel_layer.group_add(self.viewer_group, self.channel_name)
        await self.accept()
        self.beat = asyncio.ensure_future(self._beat())
        await database_sync_to_async(presence.join)(self.deployment_id, user)

    async def disconnect(self, code):
        if self.beat is not None:
            self.beat.cancel()
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await self.channel_layer.group_discard(self.viewer_group, self.channel_name)
            await database_sync_to_async(presence.leave)(self.deployment_id, self.scope["user"])

    async def receive(self, text_data=None, bytes_data=None):
        """Clients only send presence pings; anything else is ignored after a re-check."""
        if not self.group:
            return
        try:
            message = json.loads(text_data or "{}")
        except ValueError:
            return
        if isinstance(message, dict) and message.get("type") == "ping":
            if not await self._may_view(self.scope["user"]):
                await self.close(code=4403)
                return
            await self.send(text_data=json.dumps({"type": "pong"}))

    async def board_push(self, event):
        if not self.revoked:
            await self.send(text_data=event["html"])

    async def _beat(self):
        """Every few seconds, a heartbeat to this socket *through the channel layer*: if Redis or
        the layer is down, none arrives and the screen stops saying "Live"."""
        while True:
            await asyncio.sleep(settings.WARROOM_LIVE_BEAT_SECONDS)
            try:
                epoch, seq = await sync_to_async(live.current_position, thread_sensitive=False)(self.deployment_id)
                if epoch:
                    await self.channel_layer.send(self.channel_name, {"type": "live.beat", "epoch": epoch, "seq": seq})
            except asyncio.CancelledError:
                raise
            except Exception:  # the layer is down: silence is the signal
                log.info("heartbeat for deployment %s not sent", self.deployment_id, exc_info=True)

    async def live_beat(self, event):
        if not self.revoked:
            await self.send(text_data=live.beat_marker(event["epoch"], event["seq"]))

    async def access_revoked(self, event):
        """The person was removed from the deployment: no further push reaches them."""
        self.revoked = True
        await self.close(code=4403)

    @database_sync_to_async
    def _may_view(self, user):
        deployment = visible_deployments(user).filter(pk=self.deployment_id).first()
        return deployment is not None and access_for(user, deployment).can_view
