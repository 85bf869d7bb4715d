"""The unit of work's promises, whatever its driver: events go out with the commit only, the relay
is woken once, a compensation runs when (and only when) the work does not commit, and a COMMIT
whose answer is lost is settled by asking."""

import uuid

import pytest

from common.contracts import Person
from common.events import ProfessionalCreated
from common.unit_of_work import CommitLost, UnitOfWork


class MemoryUnitOfWork(UnitOfWork):
    """A driver that writes into lists: ``committed`` holds what the last COMMIT made durable."""

    def __init__(self, commit_fails_with: BaseException | None = None) -> None:
        self.wakes = 0
        super().__init__(wake_relay=self._woken)
        self.log: list[str] = []
        self.outbox: list = []
        self.committed: list = []
        self._commit_fails_with = commit_fails_with

    def _woken(self) -> None:
        self.wakes += 1

    async def _begin(self) -> None:
        self.log.append("begin")

    async def _write(self, events) -> None:
        self.outbox += events

    async def _commit(self) -> None:
        if self._commit_fails_with is not None:
            raise self._commit_fails_with
        self.committed, self.outbox = self.outbox, []
        self.log.append("commit")

    async def _rollback(self) -> None:
        self.outbox = []
        self.log.append("rollback")

    async def _release(self) -> None:
        self.log.append("release")


def announcement(name: str = "Ada") -> ProfessionalCreated:
    return ProfessionalCreated.of(uuid.uuid4(), 1, Person(id=uuid.uuid4(), name=name))


def recorder(log: list[str], entry: str):
    async def record() -> None:
        log.append(entry)

    return record


async def test_events_go_out_with_the_commit_and_the_relay_is_woken_once():
    uow = MemoryUnitOfWork()
    first, second = announcement("Ada"), announcement("Bob")
    async with uow:
        uow.publish(first)
        uow.publish(second)
        uow.on_rollback(recorder(uow.log, "compensated"))
        uow.after_commit(recorder(uow.log, "after"))
    assert uow.committed == [first, second]
    assert uow.wakes == 1
    assert uow.log == ["begin", "commit", "release", "after"]


async def test_a_failure_inside_rolls_back_compensates_and_publishes_nothing():
    uow = MemoryUnitOfWork()
    with pytest.raises(LookupError):
        async with uow:
            uow.publish(announcement())
            uow.on_rollback(recorder(uow.log, "compensated"))
            uow.after_commit(recorder(uow.log, "after"))
            raise LookupError("refused")
    assert (uow.committed, uow.wakes) == ([], 0)
    assert uow.log == ["begin", "rollback", "release", "compensated"]


async def test_a_refused_commit_compensates():
    uow = MemoryUnitOfWork(commit_fails_with=RuntimeError("serialization failure"))
    with pytest.raises(RuntimeError):
        async with uow:
            uow.publish(announcement())
            uow.on_rollback(recorder(uow.log, "compensated"))
    assert uow.wakes == 0 and uow.log[-1] == "compensated"


async def test_a_work_without_events_wakes_nobody():
    uow = MemoryUnitOfWork()
    async with uow:
        pass
    assert uow.wakes == 0


@pytest.mark.parametrize(
    ("committed", "outcome"),
    [(True, "committed"), (False, "compensated"), (None, "unknown")],
)
async def test_a_lost_commit_answer_is_settled_by_asking(committed, outcome):
    uow = MemoryUnitOfWork(commit_fails_with=ConnectionResetError("connection lost after COMMIT was sent"))

    async def ask() -> bool | None:
        return committed

    result = "committed"
    try:
        async with uow:
            uow.published_by_statement()  # e.g. the booking's own statement wrote its outbox row
            uow.on_rollback(recorder(uow.log, "compensated"))
            uow.after_commit(recorder(uow.log, "after"))
            uow.if_commit_lost(ask)
    except CommitLost as lost:
        assert lost.committed is committed
        result = "compensated" if "compensated" in uow.log else "unknown"
    assert result == outcome
    # Known committed: the work goes on as committed. Not committed: compensated. Unknown: nothing
    # is given back blindly (a hold expires instead), and nothing runs after a commit.
    assert ("after" in uow.log) is (committed is True)
    assert ("compensated" in uow.log) is (committed is False)
    assert uow.wakes == (1 if committed else 0)
