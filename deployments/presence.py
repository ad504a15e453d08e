"""Who has the war room open right now: a counter per user in Redis (tabs add up)."""

from django.contrib.auth import get_user_model
from django.utils.html import format_html, format_html_join

from deployments import live

TTL_SECONDS = 6 * 3600


def _key(deployment_id):
    return f"warroom:presence:{deployment_id}"


def _push(deployment_id):
    live.publish(deployment_id, [render(deployment_id)])


def join(deployment_id, user):
    client = live.redis_client()
    client.hincrby(_key(deployment_id), user.pk, 1)
    client.expire(_key(deployment_id), TTL_SECONDS)
    _push(deployment_id)


def leave(deployment_id, user):
    client = live.redis_client()
    if client.hincrby(_key(deployment_id), user.pk, -1) <= 0:
        client.hdel(_key(deployment_id), user.pk)
    _push(deployment_id)


def online_user_ids(deployment_id) -> set[int]:
    return {int(uid) for uid, n in live.redis_client().hgetall(_key(deployment_id)).items() if int(n) > 0}


def render(deployment_id) -> str:
    ids = online_user_ids(deployment_id)
    users = get_user_model().objects.filter(pk__in=ids).order_by("username")
    names = format_html_join(", ", '<span data-user="{}">{}</span>', ((u.pk, u.get_full_name() or u.username) for u in users))
    return format_html(
        '<p id="presence-list" hx-swap-oob="true" data-online="{}">{}</p>',
        " ".join(str(i) for i in sorted(ids)),
        names or "nobody",
    )
