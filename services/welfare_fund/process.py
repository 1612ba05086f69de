"""The accrual process: follows the ledger's JournalEntry.Posted events and accrues the
fund's share of each income posting, as ledger entries, exactly once.

The projection runner drives it (services/common/projections.py, `Process`): each step
hands it the page's postings before the read models apply the page.

Exactly once: the fund's book records the last ledger position it accrued in the same
save as the accrual entries (WelfareFund.AccrualsRecorded), and only postings after it
are accrued. A page handed over again is skipped, and of two followers only one can
save the book's next version.

The runner tracks it as "welfare_accrual" in `projection_tracking` (how far the log has
been read, committed after the save); the gateway's read-your-writes wait includes it,
so a query after a ledger posting waits until the posting has been accrued.
`welfare_accrual_progress` holds the last position the process wrote, which fund
queries wait for so that they also see the accrual entries projected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from eventsourcing.utils import get_topic
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    Table,
    bindparam,
    insert,
    select,
    update,
)

from services.common import sealing
from services.common.database import metadata
from services.common.projections import DomainEvent, Process
from services.ledger.domain import JournalEntry
from services.welfare_fund.application import ACCRUAL_ACTOR, WelfareFundApplication
from services.welfare_fund.domain import Beneficiary

welfare_accrual_progress = Table(
    "welfare_accrual_progress",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("written_position", BigInteger, nullable=False),
)

PROCESS_TABLES = (welfare_accrual_progress,)

# Built once: run on every projector step that accrued.
_RECORD_WRITTEN = (
    update(welfare_accrual_progress)
    .where(welfare_accrual_progress.c.id == 1)
    .where(welfare_accrual_progress.c.written_position < bindparam("written"))
    .values(written_position=bindparam("written"))
)
POSTED_TOPIC = get_topic(JournalEntry.Posted)


class WelfareAccrualProcess(Process):
    name: ClassVar[str] = "welfare_accrual"
    topics: ClassVar[frozenset[str]] = frozenset({POSTED_TOPIC})

    def __init__(self, app: WelfareFundApplication, engine: Engine) -> None:
        self.app = app
        with engine.begin() as conn:
            if conn.execute(select(welfare_accrual_progress.c.id)).first() is None:
                conn.execute(insert(welfare_accrual_progress).values(id=1, written_position=0))

    def handle(self, events: Sequence[tuple[int, DomainEvent]]) -> int | None:
        postings = []
        for position, event in events:
            assert isinstance(event, JournalEntry.Posted)
            # Its own accrual entries are never income: skipping them here spares
            # reading the book for the step that follows each accrual.
            if event.actor != ACCRUAL_ACTOR:
                postings.append((position, event))
        return self.app.accrue(postings) if postings else None

    def record(self, conn: Connection, written: int) -> None:
        conn.execute(_RECORD_WRITTEN, {"written": written})


class ForgottenKeyShredder(sealing.KeyShredder):
    """Deletes the note key of every beneficiary forgotten (see KeyShredder):
    `forgetBeneficiary` deletes it itself, after saving the Forgotten event."""

    name: ClassVar[str] = "welfare_key_shredder"
    topics: ClassVar[frozenset[str]] = frozenset({get_topic(Beneficiary.Forgotten)})
