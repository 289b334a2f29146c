"""The files that point `sam local invoke` / `sam local start-api` (for users who have Docker;
these machines have none, so no test of this project runs them) at `make dev`'s local stack:

- `.local/sam-env.json` (`--env-vars`): for every function of template.yaml, every variable its
  template entry sets (Globals and its own), with the local names of docs/api.md (`inventory`,
  `inventory-events`, the local queues' URLs) in place of the deployed ones. SAM lets this file
  override only the variables the template declares, which is every one it lists.
- `.local/sam-container-env.json` (`--container-env-vars`): where the local stack is, and its
  credentials: DynamoDB Local on :8000 and LocalStack on :4566 of the host (run SAM with
  `--docker-network host` so 127.0.0.1 is the host).

Usage: .local/template/bin/python infra/sam_env.py   (after infra/topology.py)
"""
import json
import os
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
LOCALSTACK = os.environ.get("SAM_LOCALSTACK_URL", "http://127.0.0.1:4566")
DYNAMODB = os.environ.get("SAM_DYNAMODB_URL", "http://127.0.0.1:8000")
ACCOUNT, REGION = "000000000000", "us-east-1"


def local_value(topology, text):
    """A template value with its references resolved to `make dev`'s names."""

    def one(match):
        reference = match.group(1)
        logical_id, _, attribute = reference.partition(".")
        if reference == "AWS::Region":
            return REGION
        if reference == "AWS::AccountId":
            return ACCOUNT
        if reference == "AWS::Partition":
            return "aws"
        if reference == "AWS::URLSuffix":
            return "amazonaws.com"
        resource = topology["resources"].get(logical_id)
        if resource is None:
            raise SystemExit(f"sam_env.py: cannot resolve ${{{reference}}}")
        name = resource["localName"]
        kind = resource["type"]
        if kind == "AWS::DynamoDB::Table":
            arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
            return {"": name, "Arn": arn, "StreamArn": f"{arn}/stream/*"}[attribute]
        if kind == "AWS::Events::EventBus":
            return {"": name, "Name": name, "Arn": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{name}"}[attribute]
        if kind == "AWS::SQS::Queue":
            return {
                "": f"{LOCALSTACK}/{ACCOUNT}/{name}",
                "QueueUrl": f"{LOCALSTACK}/{ACCOUNT}/{name}",
                "QueueName": name,
                "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
            }[attribute]
        raise SystemExit(f"sam_env.py: cannot resolve ${{{reference}}}")

    return re.sub(r"\$\{([^}]+)\}", one, text)


def main():
    topology = json.loads((ROOT / ".local" / "topology.json").read_text())
    env = {
        spec["logicalId"]: {k: local_value(topology, v) for k, v in spec["environment"].items()}
        for spec in topology["functions"].values()
    }
    container = {
        "AWS_ENDPOINT_URL": LOCALSTACK,
        "AWS_ENDPOINT_URL_DYNAMODB": DYNAMODB,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": REGION,
    }
    out = ROOT / ".local"
    (out / "sam-env.json").write_text(json.dumps(env, indent=2, sort_keys=True) + "\n")
    (out / "sam-container-env.json").write_text(
        json.dumps({spec["logicalId"]: container for spec in topology["functions"].values()}, indent=2, sort_keys=True)
        + "\n"
    )
    print(f"wrote .local/sam-env.json ({len(env)} functions) and .local/sam-container-env.json")


if __name__ == "__main__":
    main()
