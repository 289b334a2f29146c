"""What template.yaml deploys, resolved for the local runtime: `.local/topology.json`.

The local runtime (`make dev`), the integration tests and the bench build what runs from this file
and from nothing else (dev_server::topology): each function's routes, environment, timeout,
schedule, event source mappings and IAM statements, and the queues, rules and bus they use. It is
read off the template *after* the SAM transform (the same translator `sam build` and `sam deploy`
use, run offline), so Globals are merged and SAM's shorthands expanded exactly as they deploy.

Values keep the template's references as placeholders, resolved by the runtime against the local
names (a test's own table, bus and queues): `${LogicalId}` (Ref), `${LogicalId.Attr}` (GetAtt),
`${AWS::Region}`, `${AWS::AccountId}`, `${AWS::Partition}`. Parameters take their defaults and
conditions are evaluated with them (what a default deploy gets). Anything the runtime could not
honour (an intrinsic this file does not resolve, a statement with NotAction, NotResource, a
condition operator the gate does not evaluate (CONDITION_OPERATORS), a Principal in a role's
policy, a managed policy but the logs and X-Ray ones, a schedule expression other than rate(...))
is an error: `make lint-template` fails on it, never a silent allow. The event bus's own policy
(AWS::Events::EventBusPolicy) is read too: the gate applies it to every call on the bus.

Usage: .local/tools/bin/python infra/topology.py [--out PATH] [--parameter NAME=VALUE]...
         (default .local/topology.json; a parameter other than its default: a test's variant)
       .local/tools/bin/python infra/topology.py --check        (problems only, nothing written)
"""
import copy
import hashlib
import json
import os
import pathlib
import re
import sys

from cfnlint.decode import decode
from samtranslator.translator.transform import transform

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
# The pseudo parameters the local runtime resolves (dev_server::topology::Names).
PSEUDO = {"AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::URLSuffix"}
# The managed policies the gate may ignore: CloudWatch Logs and X-Ray, which the functions reach
# through the Lambda runtime, never through their SDK clients.
IGNORED_MANAGED = ("service-role/AWSLambdaBasicExecutionRole", ":policy/AWSXrayWriteOnlyAccess")
LOCAL_TYPES = {"AWS::DynamoDB::Table", "AWS::Events::EventBus", "AWS::SQS::Queue"}
# The condition operators the IAM gate evaluates (dev_server::iam::Operator).
CONDITION_OPERATORS = {
    "StringEquals", "StringNotEquals", "StringLike", "StringNotLike",
    "ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike",
}


class NoManagedPolicies:
    """The translator asks for AWS managed policy ARNs only for policy names; we use statements."""

    def load(self):
        return {}


class Unresolvable(Exception):
    pass


def transformed_template():
    """(the template as written, as the SAM transform turns it, problems)."""
    template, matches = decode(str(TEMPLATE))
    if matches:
        return None, None, [str(m) for m in matches]
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    offline = copy.deepcopy(template)
    for resource in offline["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/key.zip"
    try:
        return template, transform(offline, {}, NoManagedPolicies()), []
    except Exception as e:  # the translator reports every problem in one exception
        return template, None, [f"SAM transform: {e}"]


class Resolver:
    """Resolves intrinsics to plain JSON with `${...}` placeholders, parameters at their defaults."""

    def __init__(self, template, overrides=None):
        self.parameters = {
            name: p.get("Default") for name, p in template.get("Parameters", {}).items()
        }
        self.parameters.update(overrides or {})
        # A CommaDelimitedList is a list (its empty default: [""], as CloudFormation gives it).
        for name, p in template.get("Parameters", {}).items():
            if p.get("Type") == "CommaDelimitedList" and isinstance(self.parameters[name], str):
                self.parameters[name] = self.parameters[name].split(",")
        self.resources = template.get("Resources", {})
        self.conditions = template.get("Conditions", {})
        self._evaluated = {}

    def condition(self, name):
        if name not in self._evaluated:
            if name not in self.conditions:
                raise Unresolvable(f"unknown condition {name}")
            self._evaluated[name] = bool(self.value(self.conditions[name], "Conditions." + name))
        return self._evaluated[name]

    def ref(self, name, where):
        if name in self.parameters:
            value = self.parameters[name]
            if value is None:
                raise Unresolvable(f"{where}: parameter {name} has no default")
            return value
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in PSEUDO or name in self.resources:
            return "${" + name + "}"
        raise Unresolvable(f"{where}: Ref to unknown {name}")

    def sub(self, text, variables, where):
        def one(match):
            inner = match.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            if inner in variables:
                return str(self.value(variables[inner], where))
            name = inner.split(".")[0]
            if inner in self.parameters:
                return str(self.ref(inner, where))
            if inner in PSEUDO or name in self.resources:
                return "${" + inner + "}"
            raise Unresolvable(f"{where}: ${{{inner}}} in Fn::Sub names nothing")

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def value(self, node, where):
        if isinstance(node, list):
            out = [self.value(v, f"{where}[{i}]") for i, v in enumerate(node)]
            return [v for v in out if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg, where)
            if key == "Fn::GetAtt":
                parts = arg.split(".", 1) if isinstance(arg, str) else arg
                if parts[0] not in self.resources:
                    raise Unresolvable(f"{where}: Fn::GetAtt of unknown {parts[0]}")
                return "${" + parts[0] + "." + parts[1] + "}"
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                return self.sub(text, variables, where)
            if key == "Fn::If":
                chosen = arg[1] if self.condition(arg[0]) else arg[2]
                return self.value(chosen, where)
            if key == "Fn::Join":
                return arg[0].join(str(v) for v in self.value(arg[1], where))
            if key == "Fn::Equals":
                a, b = self.value(arg[0], where), self.value(arg[1], where)
                return a == b
            if key == "Fn::Not":
                return not self.value(arg[0], where)
            if key == "Fn::And":
                return all(self.value(v, where) for v in arg)
            if key == "Fn::Or":
                return any(self.value(v, where) for v in arg)
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                raise Unresolvable(f"{where}: {key} is not resolved by infra/topology.py")
        out = {}
        for k, v in node.items():
            resolved = self.value(v, f"{where}.{k}")
            if resolved is not _NO_VALUE:
                out[k] = resolved
        return out


_NO_VALUE = object()


def placeholder_target(text):
    """`LogicalId` of a `${LogicalId}` / `${LogicalId.Attr}` string, else None."""
    match = re.fullmatch(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z]+)?\}", str(text))
    return match.group(1) if match else None


def plain_pattern(pattern):
    """A pattern of nested objects whose leaves are lists of plain values (what the local mapping
    matches, dev_server::topology::matches_filter)."""
    if isinstance(pattern, dict):
        return all(plain_pattern(v) for v in pattern.values())
    return isinstance(pattern, list) and all(not isinstance(v, (dict, list)) for v in pattern)


def rate_seconds(expression):
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    if not match:
        raise Unresolvable(f"schedule {expression!r}: the local runtime runs rate(N minutes|hours|days) only")
    n, unit = int(match.group(1)), match.group(2).rstrip("s")
    return n * {"minute": 60, "hour": 3600, "day": 86400}[unit]


def local_name(name):
    """The local name of a deployed one: the stage suffix dropped (docs/api.md, "Names")."""
    return re.sub(r"-\$\{Stage\}$", "", name) if isinstance(name, str) else name


def statements_of(role_name, role, resources, problems):
    """The statements of every policy of the role: its own, and those of `AWS::IAM::Policy`
    resources naming it (SAM connectors write those). What the gate cannot evaluate is a problem."""
    out = []
    for arn in role.get("ManagedPolicyArns", []):
        if not str(arn).endswith(IGNORED_MANAGED):
            problems.append(f"{role_name}: managed policy {arn}: the IAM gate cannot evaluate it (use statements)")
    if "PermissionsBoundary" in role:
        problems.append(f"{role_name}: a PermissionsBoundary, which the IAM gate does not evaluate")
    policies = list(role.get("Policies", []))
    for name, r in resources.items():
        roles = r["properties"].get("Roles", [])
        if "${" + role_name + "}" not in roles:
            continue
        if r["type"] == "AWS::IAM::Policy":
            policies.append({"PolicyName": name, "PolicyDocument": r["properties"]["PolicyDocument"]})
        else:
            problems.append(f"{name}: a {r['type']} on {role_name}, which the IAM gate does not evaluate")
    for policy in policies:
        for i, statement in enumerate(policy["PolicyDocument"]["Statement"]):
            where = f"{role_name} {policy.get('PolicyName')} statement {i}"
            statement = gate_statement(statement, where, problems, principal=False)
            if statement is not None:
                out.append(statement)
    return out


def listed(value):
    return value if isinstance(value, list) else [value]


def gate_statement(statement, where, problems, principal):
    """A policy statement as the IAM gate reads it (dev_server::topology::StatementSpec), or None
    (and a problem) if the gate cannot evaluate it. `principal`: a resource policy's statement,
    which names its principals."""
    allowed = {"Effect", "Action", "Resource", "Sid", "Condition"} | ({"Principal"} if principal else set())
    unknown = sorted(set(statement) - allowed)
    if unknown:
        problems.append(f"{where}: the IAM gate cannot evaluate {', '.join(unknown)}")
        return None
    conditions = []
    for operator, keys in statement.get("Condition", {}).items():
        if operator not in CONDITION_OPERATORS:
            problems.append(f"{where}: condition operator {operator}, which the IAM gate does not evaluate")
            return None
        for key, values in keys.items():
            conditions.append({"operator": operator, "key": key, "values": [str(v) for v in listed(values)]})
    out = {
        "effect": statement.get("Effect"),
        "actions": listed(statement.get("Action", [])),
        "resources": listed(statement.get("Resource", [])),
        "conditions": conditions,
    }
    if principal:
        who = statement.get("Principal")
        if who == "*":
            out["principals"] = ["*"]
        elif isinstance(who, dict) and set(who) <= {"AWS", "Service"}:
            out["principals"] = [p for kind in ("AWS", "Service") for p in listed(who.get(kind, []))]
        else:
            problems.append(f"{where}: Principal {who!r}, which the IAM gate does not evaluate")
            return None
    if out["effect"] not in ("Allow", "Deny"):
        problems.append(f"{where}: Effect {out['effect']!r}")
    return out


def topology(overrides=None):
    """(topology, problems), parameters at their defaults but for `overrides`."""
    template, transformed, problems = transformed_template()
    if transformed is None:
        return None, problems
    binaries = {
        name: r.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        for name, r in template["Resources"].items()
        if r.get("Type") == "AWS::Serverless::Function"
    }
    try:
        resolver = Resolver(transformed, overrides)
        resources = {
            name: {"type": r["Type"], "properties": resolver.value(r.get("Properties", {}), name)}
            for name, r in transformed["Resources"].items()
            if "Condition" not in r or resolver.condition(r["Condition"])
        }
    except Unresolvable as e:
        return None, problems + [str(e)]

    functions = {}
    for name, binary in binaries.items():
        props = resources[name]["properties"]
        role = placeholder_target(props.get("Role"))
        if role not in resources:
            problems.append(f"{name}: no role of its own in the transformed template")
            continue
        functions[binary] = {
            "logicalId": name,
            # Its execution role (the principal its calls are made as: aws:PrincipalArn).
            "role": role,
            "timeoutSeconds": props.get("Timeout", 3),
            # Lambda's variables are strings (a YAML number or boolean deploys as its text).
            "environment": {
                k: (str(v).lower() if isinstance(v, bool) else str(v))
                for k, v in props.get("Environment", {}).get("Variables", {}).items()
            },
            "routes": [],
            "schedules": [],
            "mappings": [],
            "statements": statements_of(role, resources[role]["properties"], resources, problems),
        }
    by_logical = {f["logicalId"]: binary for binary, f in functions.items()}

    def function_of(reference, where):
        target = placeholder_target(reference)
        if target not in by_logical:
            problems.append(f"{where}: targets {reference!r}, not a function of the template")
            return None
        return functions[by_logical[target]]

    integrations = {}
    for name, r in resources.items():
        if r["type"] == "AWS::ApiGatewayV2::Integration":
            integrations[name] = r["properties"].get("IntegrationUri")
    for name, r in resources.items():
        props = r["properties"]
        if r["type"] == "AWS::ApiGatewayV2::Route":
            target = re.fullmatch(r"integrations/\$\{([A-Za-z0-9]+)\}", props.get("Target", ""))
            if not target or target.group(1) not in integrations:
                problems.append(f"{name}: target {props.get('Target')!r} is not an integration of the template")
                continue
            function = function_of(integrations[target.group(1)], name)
            if function is not None:
                function["routes"].append(props["RouteKey"])
        elif r["type"] in ("AWS::Scheduler::Schedule", "AWS::Events::Rule") and "ScheduleExpression" in props:
            if props.get("State", "ENABLED") != "ENABLED":
                continue
            targets = [props["Target"]] if "Target" in props else props.get("Targets", [])
            for target in targets:
                function = function_of(target.get("Arn"), name)
                if function is None:
                    continue
                try:
                    function["schedules"].append({"name": name, "rateSeconds": rate_seconds(props["ScheduleExpression"])})
                except Unresolvable as e:
                    problems.append(f"{name}: {e}")
        elif r["type"] == "AWS::Lambda::EventSourceMapping":
            function = function_of(props.get("FunctionName"), name)
            if function is None:
                continue
            source = placeholder_target(props.get("EventSourceArn"))
            kind = resources.get(source, {}).get("type")
            if kind not in ("AWS::DynamoDB::Table", "AWS::SQS::Queue"):
                problems.append(f"{name}: event source {props.get('EventSourceArn')!r}: the local runtime polls a table's stream or a queue")
                continue
            if kind == "AWS::SQS::Queue" and props.get("BatchSize", 10) > 10:
                problems.append(f"{name}: a BatchSize over 10 (it needs a batching window), which the local queue mapping does not run")
            if kind == "AWS::DynamoDB::Table" and props.get("StartingPosition") != "TRIM_HORIZON":
                problems.append(f"{name}: StartingPosition {props.get('StartingPosition')!r}: the local stream mapping reads from TRIM_HORIZON")
            patterns = [json.loads(f["Pattern"]) for f in props.get("FilterCriteria", {}).get("Filters", [])]
            for pattern in patterns:
                if not plain_pattern(pattern):
                    problems.append(f"{name}: filter {json.dumps(pattern)}: the local mapping matches lists of values only (no prefix, numeric, exists... operators)")
            function["mappings"].append({
                "name": name,
                "source": source,
                "kind": "stream" if kind == "AWS::DynamoDB::Table" else "queue",
                "batchSize": props.get("BatchSize", 100 if kind == "AWS::DynamoDB::Table" else 10),
                "maximumBatchingWindowInSeconds": props.get("MaximumBatchingWindowInSeconds", 0),
                "reportBatchItemFailures": "ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                "maximumRetryAttempts": props.get("MaximumRetryAttempts", -1),
                "maximumRecordAgeInSeconds": props.get("MaximumRecordAgeInSeconds", -1),
                "bisectBatchOnFunctionError": props.get("BisectBatchOnFunctionError", False),
                "onFailure": placeholder_target(
                    props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
                ),
                "filters": patterns,
                "maximumConcurrency": props.get("ScalingConfig", {}).get("MaximumConcurrency"),
            })

    local = {}
    for name, r in resources.items():
        if r["type"] not in LOCAL_TYPES:
            continue
        props = r["properties"]
        entry = {"type": r["type"]}
        if r["type"] == "AWS::DynamoDB::Table":
            entry["localName"] = local_name(template["Resources"][name]["Properties"].get("TableName", {}).get("Fn::Sub"))
        elif r["type"] == "AWS::Events::EventBus":
            entry["localName"] = local_name(template["Resources"][name]["Properties"].get("Name", {}).get("Fn::Sub"))
        else:
            entry["localName"] = local_name(template["Resources"][name]["Properties"].get("QueueName", {}).get("Fn::Sub"))
            entry["visibilityTimeout"] = props.get("VisibilityTimeout", 30)
            entry["messageRetentionPeriod"] = props.get("MessageRetentionPeriod", 345600)
            redrive = props.get("RedrivePolicy")
            if redrive:
                entry["deadLetterQueue"] = placeholder_target(redrive.get("deadLetterTargetArn"))
                entry["maxReceiveCount"] = int(redrive.get("maxReceiveCount"))
        if not isinstance(entry["localName"], str):
            problems.append(f"{name}: its name must be a Fn::Sub ending in -${{Stage}} (the local name drops it)")
        local[name] = entry
    rules = []
    buses = [k for k, r in local.items() if r["type"] == "AWS::Events::EventBus"]
    for name, r in resources.items():
        props = r["properties"]
        if r["type"] == "AWS::Events::Rule" and "EventPattern" in props:
            targets = [placeholder_target(t.get("Arn")) for t in props.get("Targets", [])]
            for target, written in zip(targets, props.get("Targets", [])):
                if local.get(target, {}).get("type") != "AWS::SQS::Queue":
                    problems.append(f"{name}: target {written.get('Arn')!r}: the local stack routes rules to queues only")
            if placeholder_target(props.get("EventBusName")) not in buses:
                problems.append(f"{name}: on {props.get('EventBusName')!r}, not the template's bus")
            rules.append({"name": name, "bus": placeholder_target(props.get("EventBusName")), "pattern": props["EventPattern"], "targets": targets})
        if r["type"] == "AWS::ApiGatewayV2::Api" and ("Body" in props or "BodyS3Location" in props):
            problems.append(f"{name}: routes in an OpenAPI body, which the local runtime does not read (use Route resources)")

    # Resource policies of the bus: every call on it is judged by them too.
    resource_policies = []
    for name, r in resources.items():
        if r["type"] == "AWS::Events::EventBusPolicy":
            props = r["properties"]
            if "Statement" not in props:
                problems.append(f"{name}: an EventBusPolicy without Statement (Action/Principal form), which the IAM gate does not read")
                continue
            statement = gate_statement(props["Statement"], name, problems, principal=True)
            if statement is not None:
                resource_policies.append({"name": name, "bus": placeholder_target(props.get("EventBusName")), "statement": statement})
        elif r["type"].endswith("Policy") and r["type"] not in ("AWS::IAM::Policy", "AWS::SQS::QueuePolicy"):
            problems.append(f"{name}: a {r['type']}, which the local runtime does not apply")

    digest = hashlib.sha256(TEMPLATE.read_bytes()).hexdigest()
    return {
        "templateSha256": digest,
        "functions": dict(sorted(functions.items())),
        "resources": local,
        "rules": rules,
        "resourcePolicies": resource_policies,
    }, problems


def main(argv):
    overrides = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--parameter")
    result, problems = topology(overrides)
    for p in problems:
        print(f"template.yaml: {p}")
    if problems:
        return 1
    if "--check" in argv:
        return 0
    out = pathlib.Path(argv[argv.index("--out") + 1]) if "--out" in argv else ROOT / ".local" / "topology.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2) + "\n"
    if not out.exists() or out.read_text() != text:
        out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
