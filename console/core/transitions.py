"""The one way a job changes state: the allowed-transition table + compare-and-swap.

``transition_job`` writes the new state only if the job is still in the state
the caller read (``filter(pk=…, state=old).update(…) == 1``), so two workers
racing on one job cannot both move it, and records an ``Event`` in the same
transaction.
"""

from collections.abc import Callable, Iterable

from django.db import transaction
from django.utils import timezone

from console.core.choices import JOB_STATE_TIMESTAMP, JOB_TRANSITIONS, EventKind, JobState
from console.core.counters import count_transition
from console.core.models import Event, Job


class InvalidTransition(Exception):
    """The table does not allow this move (a programming or a user error)."""

    def __init__(self, job_id: int, from_state: str, to_state: str) -> None:
        super().__init__(f"job {job_id}: {from_state} → {to_state} is not an allowed transition")
        self.job_id = job_id
        self.from_state = from_state
        self.to_state = to_state


def is_allowed(from_state: str, to_state: str) -> bool:
    return to_state in JOB_TRANSITIONS.get(from_state, frozenset())



def _state_update(to_state: str, now, fields: dict) -> dict:
    """The columns a move to ``to_state`` writes: the state, its timestamp, and (out of
    the queue) a cleared pending reason unless ``fields`` sets one."""
    update = dict(fields)
    update["state"] = to_state
    update["updated_at"] = now
    update[JOB_STATE_TIMESTAMP[JobState(to_state)]] = now
    if to_state != JobState.QUEUED:
        update.setdefault("pending_reason", "")
        update.setdefault("pending_code", "")
        update.setdefault("pending_data", {})
    return update

def transition_job(
    job_id: int,
    to_state: str,
    *,
    from_states: Iterable[str] | None = None,
    reason: str = "",
    actor: str = "system",
    data: dict | None = None,
    **fields,
) -> bool:
    """Move job ``job_id`` to ``to_state`` if it is in one of ``from_states``.

    ``from_states`` defaults to every state from which the table allows
    ``to_state``. Returns True when this call made the move, False when the
    job was not in an expected state (someone else moved it first: the caller
    treats that as "already done" or "lost the race"). Raises InvalidTransition
    when an explicitly named source state cannot lead to ``to_state``.
    Extra ``fields`` are written in the same UPDATE.
    """
    if from_states is None:
        sources = [s for s, targets in JOB_TRANSITIONS.items() if to_state in targets]
    else:
        sources = list(from_states)
        for source in sources:
            if not is_allowed(source, to_state):
                raise InvalidTransition(job_id, source, to_state)
    now = timezone.now()
    with transaction.atomic():
        row = Job.objects.filter(pk=job_id).values_list(
            "state", "tenant_id", "submitted_at"
        ).first()
        if row is None or row[0] not in sources:
            return False
        current, tenant_id, submitted_at = row
        update = _state_update(to_state, now, fields)
        moved = Job.objects.filter(pk=job_id, state=current).update(**update)
        if moved != 1:
            return False
        Event.objects.create(
            job_id=job_id,
            kind=EventKind.TRANSITION,
            from_state=current,
            to_state=to_state,
            reason=reason[:1000],
            actor=actor[:150],
            data=data or {},
        )
        count_transition(tenant_id, to_state, submitted_at, now)
    return True


def transition_jobs(
    job_ids: Iterable[int],
    to_state: str,
    *,
    from_state: str,
    reason: str = "",
    actor: str = "system",
    data_for: Callable[[Job], dict] | None = None,
    reason_for: Callable[[Job], str] | None = None,
    **fields,
) -> dict[int, Job]:
    """``transition_job`` for many jobs at once, in three statements: the jobs still
    in ``from_state`` are locked (``SELECT … FOR UPDATE``), moved in one UPDATE that
    repeats the state check (compare-and-swap), and get one ``Event`` each
    (data: ``data_for(job)``) in one INSERT. Returns the moved jobs (as read before
    the move: ``submitted_at``, ``attempts``, ``generation``); a job in another
    state is left out. Call inside a
    transaction (the lock holds until it commits)."""
    if not is_allowed(from_state, to_state):
        raise InvalidTransition(0, from_state, to_state)
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    now = timezone.now()
    locked = {
        job.pk: job
        for job in Job.objects.select_for_update().filter(pk__in=ids, state=from_state)
        .order_by("pk").only("pk", "state", "submitted_at", "attempts", "generation")
    }
    if not locked:
        return {}
    update = _state_update(to_state, now, fields)
    moved = Job.objects.filter(pk__in=list(locked), state=from_state).update(**update)
    if moved != len(locked):  # cannot happen under the row locks; never half-move
        raise RuntimeError(f"bulk transition moved {moved} of {len(locked)} locked jobs")
    Event.objects.bulk_create(
        Event(job_id=job.pk, kind=EventKind.TRANSITION, from_state=from_state, to_state=to_state,
              reason=(reason_for(job) if reason_for else reason)[:1000], actor=actor[:150],
              data=(data_for(job) if data_for else None) or {})
        for job in locked.values()
    )
    return locked
