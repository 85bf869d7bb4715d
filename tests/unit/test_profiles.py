"""A service keeps a person's stored profile between announcements, but never one it read while an
announcement overtook the read (it may be the profile from before the change)."""

import uuid

from common.auth import Identity
from common.profiles import Profiles
from common.roles import Role

ANA = Identity(id=uuid.uuid4(), role=Role.CLIENT, name="Ana", timezone="UTC")
NOW = ANA.model_copy(update={"name": "Ana B.", "timezone": "Asia/Tokyo"})


class FakeRedis:
    def __init__(self, profiles: Profiles | None = None) -> None:
        self.stored: dict[str, str] = {}
        self.reads = 0
        self.announce_during_read: Profiles | None = profiles

    async def get(self, key: str) -> str | None:
        self.reads += 1
        if self.announce_during_read is not None:  # a change announced while this read is on its way
            self.announce_during_read._announced += 1
        return self.stored.get(key)


async def test_a_stored_profile_overrides_the_tokens_and_is_read_once():
    redis = FakeRedis()
    profiles = Profiles(redis, "p")
    profiles._following = True
    redis.stored[profiles._key(ANA.id)] = NOW.model_dump_json()
    assert (await profiles.current(ANA)).timezone == "Asia/Tokyo"
    assert (await profiles.current(ANA)).name == "Ana B." and redis.reads == 1
    assert (await profiles.current(ANA)).role is Role.CLIENT


async def test_a_read_an_announcement_overtook_is_used_but_not_kept():
    redis = FakeRedis()
    profiles = Profiles(redis, "p")
    profiles._following = True
    redis.announce_during_read = profiles
    assert await profiles.current(ANA) == ANA  # nothing stored (yet)
    assert ANA.id not in profiles._kept
    redis.announce_during_read = None
    redis.stored[profiles._key(ANA.id)] = NOW.model_dump_json()
    assert (await profiles.current(ANA)).timezone == "Asia/Tokyo"  # read afresh, so the change shows
    assert ANA.id in profiles._kept


async def test_nothing_is_kept_while_not_following():
    redis = FakeRedis()
    profiles = Profiles(redis, "p")
    await profiles.current(ANA)
    await profiles.current(ANA)
    assert redis.reads == 2 and profiles._kept == {}
