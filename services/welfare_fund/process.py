"""The accrual process: follows the ledger's JournalEntry.Posted events and accrues the
fund's share of each income posting, as ledger entries, exactly once.

Exactly once: the fund's book records the last ledger position it accrued in the same
save as the accrual entries (WelfareFund.AccrualsRecorded), and every step starts
after max(that position, this process's tracking row). A replayed page is skipped,
and of two followers only one can save the book's next version.

The tracking row in `projection_tracking` ("welfare_accrual") says how far the log
has been read (updated after the save); the gateway's read-your-writes wait includes
it, so a query after a ledger posting waits until the posting has been accrued.
`welfare_accrual_progress` holds the last position the process wrote, which fund
queries wait for so that they also see the accrual entries projected.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from eventsourcing.utils import get_topic
from sqlalchemy import BigInteger, Column, Engine, Integer, Table, insert, select, update

from services.common.database import metadata, projection_tracking
from services.common.projections import Process
from services.ledger.domain import JournalEntry
from services.welfare_fund.application import WelfareFundApplication

welfare_accrual_progress = Table(
    "welfare_accrual_progress",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("written_position", BigInteger, nullable=False),
)

PROCESS_TABLES = (welfare_accrual_progress,)
POSTED_TOPIC = get_topic(JournalEntry.Posted)


class WelfareAccrualProcess(Process):
    name: ClassVar[str] = "welfare_accrual"

    def __init__(self, app: WelfareFundApplication, engine: Engine) -> None:
        self.app = app
        self.engine = engine
        with self.engine.begin() as conn:
            if (
                conn.execute(
                    select(projection_tracking.c.position).where(
                        projection_tracking.c.projection == self.name
                    )
                ).first()
                is None
            ):
                conn.execute(insert(projection_tracking).values(projection=self.name, position=0))
            if conn.execute(select(welfare_accrual_progress.c.id)).first() is None:
                conn.execute(insert(welfare_accrual_progress).values(id=1, written_position=0))

    def position(self) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(projection_tracking.c.position).where(
                    projection_tracking.c.projection == self.name
                )
            ).scalar_one()
        return int(value)

    def step(self, page_size: int) -> int:
        start = max(self.position(), self.app.fund().position)
        head = self.app.recorder.max_notification_id() or 0
        if head <= start:
            return 0
        notifications = self.app.recorder.select_notifications(
            start=start,
            limit=page_size,
            stop=head,
            topics=[POSTED_TOPIC],
            inclusive_of_start=False,
        )
        covered = notifications[-1].id if len(notifications) >= page_size else head
        events = []
        for notification in notifications:
            event = self.app.mapper.to_domain_event(notification)
            assert isinstance(event, JournalEntry.Posted)
            events.append((notification.id, event))
        written = self.app.accrue(events) if events else None
        with self.engine.begin() as conn:
            conn.execute(
                update(projection_tracking)
                .where(projection_tracking.c.projection == self.name)
                .where(projection_tracking.c.position < covered)
                .values(position=covered, updated_at=datetime.now(UTC))
            )
            if written is not None:
                conn.execute(
                    update(welfare_accrual_progress)
                    .where(welfare_accrual_progress.c.id == 1)
                    .where(welfare_accrual_progress.c.written_position < written)
                    .values(written_position=written)
                )
        # Having written, this process is not caught up: its own entries are new
        # notifications for it and for the projections. Ask the runner for another page.
        return page_size if written is not None else len(notifications)
