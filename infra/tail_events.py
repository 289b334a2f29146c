"""Prints the events the service published on the `make dev` stack (from the local tap queue
`inventory-events-tap`, which a rule on the bus fills with every `source: "inventory"` event), one
JSON line each, and removes them from the tap. Stops when the tap is empty.

Usage: .local/venv/bin/python infra/tail_events.py   (`--follow` to keep waiting for more)
"""
import json
import os
import sys

import boto3

sqs = boto3.client(
    "sqs",
    endpoint_url=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
    region_name=os.environ.get("AWS_REGION", "us-east-1"),
    aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
    aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
)
url = sqs.get_queue_url(QueueName="inventory-events-tap")["QueueUrl"]
follow = "--follow" in sys.argv
while True:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
    if not messages and not follow:
        break
    for m in messages:
        event = json.loads(m["Body"])
        print(json.dumps({"detail-type": event["detail-type"], "detail": event["detail"]}))
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
