"""Creates the LocalStack side of the local stack, idempotently: the event bus, the order-events
queue with its dead-letter queue (maxReceiveCount 3), the rule that routes `source: "orders"`
events from the bus to the queue, the dead-letter queue of `publish-events`, and a tap queue that
receives every event the service publishes (local only, to watch them). The DynamoDB table is created by the service itself
(`inventory::store::create_table`), so its schema lives in one place.

Usage: python infra/create_resources.py  (endpoint from AWS_ENDPOINT_URL, names from the env)
"""
import json
import os

import boto3

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
REGION = os.environ.get("AWS_REGION", "us-east-1")
BUS = os.environ.get("EVENT_BUS_NAME", "inventory-events")
QUEUE = os.environ.get("ORDER_EVENTS_QUEUE", "inventory-order-events")
DLQ = QUEUE + "-dlq"
RULE = "inventory-order-events"
TAP = "inventory-events-tap"
PUBLISH_DLQ = os.environ.get("PUBLISH_DLQ", "inventory-publish-events-dlq")


def client(service):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )


def main():
    events, sqs = client("events"), client("sqs")
    try:
        events.create_event_bus(Name=BUS)
    except events.exceptions.ResourceAlreadyExistsException:
        pass
    bus_arn = events.describe_event_bus(Name=BUS)["Arn"]

    sqs.create_queue(QueueName=PUBLISH_DLQ, Attributes={"MessageRetentionPeriod": "1209600"})
    dlq_url = sqs.create_queue(QueueName=DLQ, Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=QUEUE,
        Attributes={
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    events.put_rule(Name=RULE, EventBusName=BUS, EventPattern=json.dumps({"source": ["orders"]}), State="ENABLED")
    events.put_targets(Rule=RULE, EventBusName=BUS, Targets=[{"Id": "order-events-queue", "Arn": queue_arn}])
    sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={
            "Policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": queue_arn,
                            "Condition": {"ArnEquals": {"aws:SourceArn": bus_arn}},
                        }
                    ],
                }
            )
        },
    )
    # A local-only tap: every event the service publishes, for `infra/tail_events.py`.
    tap_url = sqs.create_queue(QueueName=TAP, Attributes={"MessageRetentionPeriod": "3600"})["QueueUrl"]
    tap_arn = sqs.get_queue_attributes(QueueUrl=tap_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=TAP, EventBusName=BUS, EventPattern=json.dumps({"source": ["inventory"]}), State="ENABLED")
    events.put_targets(Rule=TAP, EventBusName=BUS, Targets=[{"Id": "tap", "Arn": tap_arn}])
    print(f"LocalStack resources ready: bus {BUS}, queue {QUEUE} (DLQ {DLQ}), rule {RULE}, {PUBLISH_DLQ}")


if __name__ == "__main__":
    main()
