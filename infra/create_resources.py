"""Creates the LocalStack side of the local stack as template.yaml describes it, idempotently:
the event bus, every queue (its local name, visibility timeout, retention and redrive policy with
the template's maxReceiveCount), every rule with an event pattern and its queue targets (each
queue's policy letting its rule send, as the template's queue policy does), and a tap queue that
receives every event the service publishes (local only, to watch them). The DynamoDB table is
created by the service itself (`inventory::store::create_table`), so its schema lives in one place.

What it creates is read from `.local/topology.json` (infra/topology.py): nothing here names a queue.

Usage: python infra/create_resources.py  (endpoint from AWS_ENDPOINT_URL, the bus from EVENT_BUS_NAME)
"""
import json
import os
import pathlib

import boto3

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
REGION = os.environ.get("AWS_REGION", "us-east-1")
TAP = "inventory-events-tap"


def client(service):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )


def queue_arn(sqs, url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def main():
    topology = json.loads((ROOT / ".local" / "topology.json").read_text())
    resources = topology["resources"]
    events, sqs = client("events"), client("sqs")
    buses = [r for r in resources.values() if r["type"] == "AWS::Events::EventBus"]
    bus = os.environ.get("EVENT_BUS_NAME") or buses[0]["localName"]
    try:
        events.create_event_bus(Name=bus)
    except events.exceptions.ResourceAlreadyExistsException:
        pass

    urls = {}
    queues = [(k, r) for k, r in resources.items() if r["type"] == "AWS::SQS::Queue"]
    # Dead-letter queues first: the others name them.
    for logical_id, queue in sorted(queues, key=lambda q: "deadLetterQueue" in q[1]):
        attributes = {
            "VisibilityTimeout": str(queue["visibilityTimeout"]),
            "MessageRetentionPeriod": str(queue["messageRetentionPeriod"]),
        }
        if "deadLetterQueue" in queue:
            target = queue_arn(sqs, urls[queue["deadLetterQueue"]])
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": target, "maxReceiveCount": str(queue["maxReceiveCount"])}
            )
        urls[logical_id] = sqs.create_queue(QueueName=queue["localName"], Attributes=attributes)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=urls[logical_id], Attributes=attributes)

    names = []
    for rule in topology["rules"]:
        name = f"inventory-{rule['name']}"
        events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(rule["pattern"]), State="ENABLED")
        targets = [t for t in rule["targets"] if t in urls]
        events.put_targets(
            Rule=name,
            EventBusName=bus,
            Targets=[{"Id": t, "Arn": queue_arn(sqs, urls[t])} for t in targets],
        )
        rule_arn = events.describe_rule(Name=name, EventBusName=bus)["Arn"]
        for target in targets:
            arn = queue_arn(sqs, urls[target])
            policy = {
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                }],
            }
            sqs.set_queue_attributes(QueueUrl=urls[target], Attributes={"Policy": json.dumps(policy)})
        names.append(name)
    # A local-only tap: every event the service publishes, for `infra/tail_events.py`.
    tap_url = sqs.create_queue(QueueName=TAP, Attributes={"MessageRetentionPeriod": "3600"})["QueueUrl"]
    events.put_rule(Name=TAP, EventBusName=bus, EventPattern=json.dumps({"source": ["inventory"]}), State="ENABLED")
    events.put_targets(Rule=TAP, EventBusName=bus, Targets=[{"Id": "tap", "Arn": queue_arn(sqs, tap_url)}])
    queue_names = ", ".join(resources[k]["localName"] for k, _ in queues)
    print(f"LocalStack resources ready (template.yaml): bus {bus}, queues {queue_names}, rules {', '.join(names)}")


if __name__ == "__main__":
    main()
