"""Maintenance queue worker: background jobs (purges, index backfills, compaction), one per message."""

import json

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from datasets_core.jobs import compaction, engine, purge, reindex  # noqa: F401 - registers the job kinds
from datasets_core.observability import logger

processor = BatchProcessor(event_type=EventType.SQS)
# Stop starting steps this long before the Lambda deadline: one step must still fit.
DEADLINE_MARGIN_MS = 30_000


def record_handler(record: SQSRecord, lambda_context=None) -> None:
    deadline = engine.Deadline.of(lambda_context, DEADLINE_MARGIN_MS)
    receive_count = int(record.attributes.approximate_receive_count or 1)
    outcome = engine.handle(json.loads(record.body), deadline, receive_count)
    logger.info("job message processed", extra={"message_id": record.message_id, "outcome": outcome})


@logger.inject_lambda_context
def handler(event, context):
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
