"""Checks template.yaml beyond cfn-lint (which `make lint-template` runs first):

1. The SAM transform accepts it (cfn-lint tolerates some SAM properties the transform rejects),
   run offline with the same translator `sam build` / `sam deploy` use.
2. Every crate under functions/ is a function of the template (BuildMethod rust-cargolambda,
   Binary = the crate name) and every function of the template is a crate.
3. Every HTTP route of the template is an operation of openapi.json and the other way round (the
   tests check that openapi.json matches the router, so all three agree), and has the scope its
   operation's `x-scope` names (with the JWT authorizer on).
4. Every function has a trigger: an HTTP route, an event source mapping, or a schedule.
5. Least privilege: no function role gets a managed policy but AWSLambdaBasicExecutionRole (its
   logs) and AWSXrayWriteOnlyAccess (its traces: SAM's for Tracing: Active; X-Ray has no resource
   to name), and no statement of the template grants an action on "*" except dynamodb:ListStreams.
6. The local runtime can run it as it deploys (infra/topology.py): every intrinsic resolves, every
   statement is one the IAM gate evaluates (conditions with its operators only, no NotAction,
   NotResource, no Principal in a role's policy, no managed policy it does not know), every
   schedule is a rate, every filter a plain pattern.
7. Secure by default, resolved on the transformed template: under default parameters no route but
   GET /health is open to anonymous callers (AWS_IAM); with AllowUnauthenticated=true they are
   open; with JwtIssuer, each is JWT with the scope its operation's `x-scope` names.
8. Trusted events: every grant of events:PutEvents to a function is conditioned on
   `events:source` "inventory" (no role of the stack can put an order event), and every queue
   policy lets a service send only from a named rule (ArnEquals aws:SourceArn).
9. The stage and the data: the stage writes JSON access logs (request id, source IP, principal,
   route, status, latency) to a log group kept on stack deletion; the table has deletion
   protection and is kept; every dead-letter queue is kept; every redrive allows at least 5
   receives; every function fed by a stream or a queue has reserved concurrency.

Usage: .local/template/bin/python infra/lint_template.py   (exit 1 and a list of problems if any)
"""
import json
import pathlib
import sys

import topology as local_topology

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    # 1. The SAM transform, offline (CodeUri "." is what `sam build` replaces with an S3 URI).
    template, transformed, problems = local_topology.transformed_template()
    if template is None:
        print("\n".join(problems))
        return 1
    resources = template["Resources"]

    # 2. functions/ <-> template functions.
    crates = {p.name for p in (ROOT / "functions").iterdir() if (p / "Cargo.toml").exists()}
    functions = {}
    for name, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        metadata = resource.get("Metadata", {})
        binary = metadata.get("BuildProperties", {}).get("Binary")
        if metadata.get("BuildMethod") != "rust-cargolambda" or not binary:
            problems.append(f"{name}: needs Metadata BuildMethod rust-cargolambda and BuildProperties.Binary")
            continue
        functions[binary] = name
    for missing in sorted(crates - functions.keys()):
        problems.append(f"functions/{missing} is not in template.yaml")
    for extra in sorted(functions.keys() - crates):
        problems.append(f"template.yaml builds {extra}, which is not a crate under functions/")
    globals_fn = template.get("Globals", {}).get("Function", {})
    if globals_fn.get("Architectures") != ["arm64"] or globals_fn.get("Runtime") != "provided.al2023":
        problems.append("Globals.Function must set Runtime provided.al2023 and Architectures [arm64]")

    # 3. HTTP routes <-> openapi.json.
    spec = json.loads((ROOT / "openapi.json").read_text())
    described = {f"{method.upper()} {path}" for path, item in spec["paths"].items() for method in item}
    routes = {}
    for name, resource in resources.items():
        if resource.get("Type") == "AWS::ApiGatewayV2::Route":
            routes[resource["Properties"]["RouteKey"]] = name
    for missing in sorted(described - routes.keys()):
        problems.append(f"openapi.json describes {missing}, template.yaml has no such route")
    for extra in sorted(routes.keys() - described):
        problems.append(f"template.yaml routes {extra}, openapi.json does not describe it")
    # Every route has the scope openapi.json's `x-scope` names (docs/api.md, "Scopes"), with the JWT
    # authorizer on; a route without `x-scope` (/health) has none.
    for key, name in sorted(routes.items()):
        method, path = key.split(" ", 1)
        want = spec["paths"].get(path, {}).get(method.lower(), {}).get("x-scope")
        got = resources[name]["Properties"].get("AuthorizationScopes")
        expected = None if want is None else {"Fn::If": ["JwtEnabled", [want], {"Ref": "AWS::NoValue"}]}
        if got != expected:
            problems.append(f"route {key}: AuthorizationScopes {got!r}, expected {expected!r} (openapi.json x-scope)")

    # 4. Triggers: integrations (HTTP), event source mappings and schedule targets name functions.
    for binary, name in sorted(functions.items()) if transformed else []:
        triggered = any(
            r.get("Type") in ("AWS::Lambda::EventSourceMapping", "AWS::Scheduler::Schedule", "AWS::ApiGatewayV2::Integration")
            and name in json.dumps(r.get("Properties", {}))
            for r in transformed["Resources"].values()
        )
        if not triggered:
            problems.append(f"{name} ({binary}) has no trigger (route, event source mapping or schedule)")

    # 5. Least privilege.
    for name, resource in (transformed or {"Resources": {}})["Resources"].items():
        if resource.get("Type") != "AWS::IAM::Role":
            continue
        for arn in resource["Properties"].get("ManagedPolicyArns", []):
            if not str(arn).endswith(("service-role/AWSLambdaBasicExecutionRole", ":policy/AWSXrayWriteOnlyAccess")):
                problems.append(f"{name} gets the managed policy {arn}: grant the actions it needs on its resources")
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if statement.get("Resource") == "*" and actions != ["dynamodb:ListStreams"]:
                    problems.append(f"{name} grants {actions} on every resource")

    # 7. Secure by default, on the transformed template: no route but GET /health open to
    #    anonymous callers under default parameters; open only with AllowUnauthenticated=true; with
    #    JwtIssuer, JWT and each route's scope.
    if transformed:
        scopes = {f"{m.upper()} {p}": op.get("x-scope") for p, item in spec["paths"].items() for m, op in item.items()}
        problems.extend(authorization_problems(transformed, scopes))

    # 8. Trusted events: the stack's roles put only their own source; queues take only their rule's.
    if transformed:
        problems.extend(event_trust_problems(transformed))

    # 9. The stage and the data.
    problems.extend(protection_problems(resources))

    # 6. What the local runtime runs.
    if transformed:
        problems.extend(local_topology.topology()[1])

    for p in problems:
        print(f"template.yaml: {p}")
    if not problems:
        print(f"template.yaml: {len(functions)} functions = functions/, {len(routes)} routes = openapi.json, SAM transform ok")
    return 1 if problems else 0


# The parameter sets checked, and what each route must get under them: (name, overrides, expected
# authorization of a route with scope `scope` (None: /health)).
AUTH_MODES = [
    ("default parameters", {}, lambda scope: ("NONE", None) if scope is None else ("AWS_IAM", None)),
    ("AllowUnauthenticated=true", {"AllowUnauthenticated": "true"}, lambda scope: ("NONE", None)),
    (
        "JwtIssuer set",
        {"JwtIssuer": "https://issuer.example.com"},
        lambda scope: ("NONE", None) if scope is None else ("JWT", [scope]),
    ),
]


def authorization_problems(transformed, scopes):
    """Each route's AuthorizationType and scopes, resolved under each parameter set of AUTH_MODES
    on the transformed template, against what that set must give."""
    problems, open_by_default = [], []
    for mode, overrides, expected in AUTH_MODES:
        resolver = local_topology.Resolver(transformed)
        resolver.parameters.update(overrides)
        for name, resource in transformed["Resources"].items():
            if resource.get("Type") != "AWS::ApiGatewayV2::Route":
                continue
            props = resource["Properties"]
            key = props["RouteKey"]
            got_type = resolver.value(props.get("AuthorizationType", "NONE"), name)
            got_scopes = resolver.value(props.get("AuthorizationScopes"), name) if "AuthorizationScopes" in props else None
            if got_scopes is local_topology._NO_VALUE:
                got_scopes = None
            want = expected(scopes.get(key))
            if (got_type, got_scopes) != want:
                problems.append(f"route {key} with {mode}: authorization {got_type} {got_scopes}, expected {want[0]} {want[1]}")
            if not overrides and got_type == "NONE" and key != "GET /health":
                open_by_default.append(key)
    if open_by_default:
        problems.append(f"routes open to anonymous callers under default parameters: {', '.join(sorted(open_by_default))}")
    return problems


def event_trust_problems(transformed):
    problems = []
    resolver = local_topology.Resolver(transformed)
    for name, resource in transformed["Resources"].items():
        props = resolver.value(resource.get("Properties", {}), name)
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                for statement in policy["PolicyDocument"]["Statement"]:
                    actions = local_topology.listed(statement.get("Action", []))
                    if statement.get("Effect") != "Allow" or not any(a.lower() in ("events:putevents", "events:*", "*") for a in actions):
                        continue
                    source = statement.get("Condition", {}).get("StringEquals", {}).get("events:source")
                    if local_topology.listed(source) != ["inventory"]:
                        problems.append(f"{name} may put events on the bus without StringEquals events:source inventory")
        elif resource["Type"] == "AWS::SQS::QueuePolicy":
            for statement in props["PolicyDocument"]["Statement"]:
                if statement.get("Effect") != "Allow":
                    continue
                source = statement.get("Condition", {}).get("ArnEquals", {}).get("aws:SourceArn")
                if not source or "Rule" not in str(source):
                    problems.append(f"{name}: a statement that lets a sender in without ArnEquals aws:SourceArn of a rule")
    return problems


ACCESS_LOG_FIELDS = ["$context.requestId", "$context.identity.sourceIp", "$context.identity.userArn",
                     "$context.authorizer.claims.sub", "$context.routeKey", "$context.status",
                     "$context.responseLatency"]


def target(reference):
    """The logical id a `!Ref X` / `!GetAtt X.Attr` names, else None."""
    if isinstance(reference, dict) and len(reference) == 1:
        (key, arg), = reference.items()
        if key == "Ref":
            return arg
        if key == "Fn::GetAtt":
            return (arg.split(".")[0] if isinstance(arg, str) else arg[0])
    return None


def protection_problems(resources):
    problems = []
    kept = lambda name: resources.get(name, {}).get("DeletionPolicy") == "Retain"
    for name, r in resources.items():
        props = r.get("Properties", {})
        if r["Type"] == "AWS::ApiGatewayV2::Stage":
            logs = props.get("AccessLogSettings", {})
            group = target(logs.get("DestinationArn"))
            if not group or not kept(group):
                problems.append(f"{name}: access logs to a log group kept on stack deletion (DeletionPolicy Retain)")
            missing = [f for f in ACCESS_LOG_FIELDS if f not in str(logs.get("Format", ""))]
            if missing:
                problems.append(f"{name}: the access log format lacks {', '.join(missing)}")
        elif r["Type"] == "AWS::DynamoDB::Table":
            if props.get("DeletionProtectionEnabled") is not True or not kept(name):
                problems.append(f"{name}: DeletionProtectionEnabled true and DeletionPolicy Retain")
        elif r["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in props:
            redrive = props["RedrivePolicy"]
            dlq = target(redrive.get("deadLetterTargetArn"))
            if not dlq or not kept(dlq):
                problems.append(f"{name}: its dead-letter queue must be kept on stack deletion (DeletionPolicy Retain)")
            if int(redrive.get("maxReceiveCount", 0)) < 5:
                problems.append(f"{name}: maxReceiveCount {redrive.get('maxReceiveCount')} (at least 5)")
        elif r["Type"] == "AWS::Lambda::EventSourceMapping":
            function = target(props.get("FunctionName"))
            if "ReservedConcurrentExecutions" not in resources.get(function, {}).get("Properties", {}):
                problems.append(f"{function}: fed by {name}, it needs ReservedConcurrentExecutions")
    for name, r in resources.items():
        onfailure = r.get("Properties", {}).get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if onfailure and target(onfailure) and not kept(target(onfailure)):
            problems.append(f"{name}: its failure destination {target(onfailure)} must be kept on stack deletion")
    return problems


if __name__ == "__main__":
    sys.exit(main())
