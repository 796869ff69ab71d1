"""Import queue consumer: drop-folder S3 notifications and import continuations (SQS)."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from datasets_core.deadline import Deadline
from datasets_core.imports import pipeline
from datasets_core.observability import logger

# A batch whose every message failed is reported like any other (all ids listed), not raised:
# the messages come back the same way, without a stack trace per batch in the logs.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# Stop starting new chunks this long before the Lambda deadline: one chunk must still fit.
DEADLINE_MARGIN_MS = 20_000


def record_handler(record: SQSRecord, lambda_context=None) -> None:
    deadline = Deadline.fixed(lambda_context, DEADLINE_MARGIN_MS)
    receive_count = int(record.attributes.approximate_receive_count or 1)
    outcomes = pipeline.handle_message(record.body, deadline, receive_count)
    logger.info("import message processed", extra={"message_id": record.message_id, "outcomes": outcomes})


@logger.inject_lambda_context
def handler(event, context):
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
