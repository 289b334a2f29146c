//! What deploys is what runs: the IAM gate's evaluator (pure), what a call is in IAM terms, and
//! the local runtime built from template.yaml (routes, environment, policies) refusing what the
//! template does not give a function, as AWS would.

use std::collections::BTreeMap;

use axum::body::Body;
use dev_server::iam::{
    calls_of, evaluate, wildcard_match, Call, Case, Condition, Decision, Effect, FunctionPolicy, Operator,
    Statement,
};
use dev_server::topology::matches_filter;
use dev_server::{LocalRuntime, Topology};
use http::Method;
use integration_tests::runtime::{names, runtime_of, runtime_over, topology};
use integration_tests::TestTable;
use inventory::http::RouterOptions;
use serde_json::{json, Value};
use tower::ServiceExt;

const TABLE: &str = "arn:aws:dynamodb:us-east-1:000000000000:table/inventory";

fn statement(effect: Effect, actions: &[&str], resources: &[&str]) -> Statement {
    Statement {
        effect,
        actions: actions.iter().map(|a| a.to_string()).collect(),
        resources: resources.iter().map(|r| r.to_string()).collect(),
        written_resources: resources.iter().map(|r| r.to_string()).collect(),
        ..Statement::default()
    }
}

fn call(action: &str, resource: &str) -> Call {
    Call::new(action, resource)
}

fn allowed(statements: &[Statement], action: &str, resource: &str) -> bool {
    matches!(evaluate(statements, &call(action, resource)), Decision::Allow(_))
}

#[test]
fn an_explicit_deny_wins_over_any_allow() {
    let policy = [
        statement(Effect::Allow, &["dynamodb:*"], &[TABLE]),
        statement(Effect::Deny, &["dynamodb:DeleteItem"], &["*"]),
    ];
    assert!(allowed(&policy, "dynamodb:PutItem", TABLE));
    assert_eq!(evaluate(&policy, &call("dynamodb:DeleteItem", TABLE)), Decision::ExplicitDeny(1));
    // Nothing at all: not allowed, without any Deny.
    assert_eq!(evaluate(&[], &call("dynamodb:GetItem", TABLE)), Decision::NotAllowed);
}

#[test]
fn actions_match_with_wildcards_and_without_case_resources_with_wildcards_and_case() {
    let policy =
        [statement(Effect::Allow, &["dynamodb:Get*", "sqs:?eceiveMessage"], &[TABLE, "arn:aws:sqs:*:*:q-*"])];
    assert!(allowed(&policy, "dynamodb:GetItem", TABLE));
    assert!(allowed(&policy, "DynamoDB:getitem", TABLE), "actions ignore case");
    assert!(allowed(&policy, "dynamodb:GetRecords", TABLE));
    assert!(!allowed(&policy, "dynamodb:PutItem", TABLE));
    assert!(allowed(&policy, "sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:000000000000:q-orders"));
    assert!(
        !allowed(&policy, "sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:000000000000:Q-orders"),
        "resources keep case"
    );
    assert!(!allowed(&policy, "dynamodb:GetItem", &TABLE.replace("inventory", "other")));
    assert!(
        wildcard_match("a*b*c", "aXXbYc", Case::Sensitive)
            && !wildcard_match("a*b*c", "aXXbY", Case::Sensitive)
    );
    // Within an ARN segment: a `*` inside one does not run past a colon; one ending it does.
    let inside = [statement(Effect::Allow, &["dynamodb:GetItem"], &[&format!("{TABLE}-*-x")])];
    assert!(allowed(&inside, "dynamodb:GetItem", &format!("{TABLE}-a-x")));
    assert!(
        !allowed(&inside, "dynamodb:GetItem", &format!("{TABLE}-a:b-x")),
        "a `*` inside a segment stops at `:`"
    );
    let ending = [statement(Effect::Allow, &["dynamodb:GetItem"], &[&format!("{TABLE}/stream/*")])];
    assert!(allowed(&ending, "dynamodb:GetItem", &format!("{TABLE}/stream/2026-12-06T04:16:16.686")));
    assert!(!allowed(&ending, "dynamodb:GetItem", &format!("{TABLE}-2/stream/x")));
}

#[test]
fn an_index_the_policy_does_not_name_is_not_granted_by_its_table() {
    let policy = [
        statement(Effect::Allow, &["dynamodb:Query"], &[&format!("{TABLE}/index/gsi2")]),
        statement(Effect::Allow, &["dynamodb:GetItem"], &[TABLE]),
    ];
    let query = |index: Option<&str>| {
        let mut body = json!({"TableName": "inventory", "KeyConditionExpression": "pk = :p"});
        if let Some(index) = index {
            body["IndexName"] = json!(index);
        }
        calls_of("DynamoDB_20120810.Query", body.to_string().as_bytes()).unwrap()
    };
    assert_eq!(query(Some("gsi2")), vec![call("dynamodb:Query", &format!("{TABLE}/index/gsi2"))]);
    assert!(allowed(&policy, "dynamodb:Query", &query(Some("gsi2"))[0].resource));
    assert!(!allowed(&policy, "dynamodb:Query", &query(Some("gsi1"))[0].resource), "another index");
    assert!(!allowed(&policy, "dynamodb:Query", &query(None)[0].resource), "the table itself");
}

#[test]
fn a_transaction_is_judged_item_by_item_and_one_item_not_granted_denies_it_all() {
    let body = json!({"TransactItems": [
        {"Update": {"TableName": "inventory", "Key": {}, "UpdateExpression": "SET a = :a"}},
        {"Put": {"TableName": "inventory", "Item": {}}},
        {"ConditionCheck": {"TableName": "inventory", "Key": {}, "ConditionExpression": "x"}},
        {"Delete": {"TableName": "inventory", "Key": {}}},
    ]});
    let calls = calls_of("DynamoDB_20120810.TransactWriteItems", body.to_string().as_bytes()).unwrap();
    let actions: Vec<&str> = calls.iter().map(|c| c.action.as_str()).collect();
    assert_eq!(
        actions,
        ["dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem"]
    );
    let policy = dev_server::iam::FunctionPolicy {
        function: "reserve".into(),
        principal: "arn:aws:iam::000000000000:role/ReserveFunctionRole".into(),
        resource_policies: vec![],
        statements: vec![statement(
            Effect::Allow,
            &["dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:ConditionCheckItem"],
            &[TABLE],
        )],
        from_template: false,
    };
    let denied =
        policy.check("DynamoDB_20120810.TransactWriteItems", body.to_string().as_bytes()).unwrap_err();
    assert!(denied.contains("reserve") && denied.contains("dynamodb:DeleteItem"), "{denied}");
    let gets = json!({"TransactItems": [{"Get": {"TableName": "inventory", "Key": {}}}, {"Get": {"TableName": "inventory", "Key": {}}}]});
    let calls = calls_of("DynamoDB_20120810.TransactGetItems", gets.to_string().as_bytes()).unwrap();
    assert_eq!(calls, vec![call("dynamodb:GetItem", TABLE), call("dynamodb:GetItem", TABLE)]);
}

#[test]
fn events_queues_and_streams_are_judged_on_their_own_resources() {
    let put = json!({"Entries": [{"EventBusName": "bus-a", "Source": "inventory"}, {"Source": "x"}]});
    let calls = calls_of("AWSEvents.PutEvents", put.to_string().as_bytes()).unwrap();
    assert_eq!(
        calls,
        vec![
            call("events:PutEvents", "arn:aws:events:us-east-1:000000000000:event-bus/bus-a")
                .with("events:source", "inventory"),
            call("events:PutEvents", "arn:aws:events:us-east-1:000000000000:event-bus/default")
                .with("events:source", "x"),
        ]
    );
    let delete = json!({"QueueUrl": "http://sqs.us-east-1.localhost.localstack.cloud:4566/000000000000/q1", "Entries": []});
    assert_eq!(
        calls_of("AmazonSQS.DeleteMessageBatch", delete.to_string().as_bytes()).unwrap(),
        vec![call("sqs:DeleteMessage", "arn:aws:sqs:us-east-1:000000000000:q1")]
    );
    let describe = json!({"StreamArn": "arn:aws:dynamodb:ddblocal:000000000000:table/t1/stream/2026-12-06T00:00:00.000"});
    assert_eq!(
        calls_of("DynamoDBStreams_20120810.DescribeStream", describe.to_string().as_bytes()).unwrap(),
        vec![call(
            "dynamodb:DescribeStream",
            "arn:aws:dynamodb:us-east-1:000000000000:table/t1/stream/2026-12-06T00:00:00.000"
        )]
    );
    let stream_grant = [statement(
        Effect::Allow,
        &["dynamodb:DescribeStream"],
        &["arn:aws:dynamodb:us-east-1:000000000000:table/t1/stream/*"],
    )];
    assert!(allowed(
        &stream_grant,
        "dynamodb:DescribeStream",
        &calls_of("DynamoDBStreams_20120810.DescribeStream", describe.to_string().as_bytes()).unwrap()[0]
            .resource
    ));
    assert!(
        calls_of("AmazonS3.PutObject", json!({}).to_string().as_bytes()).is_err(),
        "a service the gate does not know is never let through"
    );
}

#[test]
fn the_stream_filters_of_the_template_match_the_records_the_publisher_needs_and_no_other() {
    let mapping = &topology().function("publish-events").unwrap().mappings[0];
    let record = |event: &str, entity: &str| json!({"eventName": event, "dynamodb": {"NewImage": {"entity": {"S": entity}, "pk": {"S": "x"}}}});
    let passes = |r: &Value| mapping.filters.iter().any(|p| matches_filter(p, r));
    assert!(passes(&record("INSERT", "OUTBOX")));
    assert!(passes(&record("MODIFY", "STOCK")) && passes(&record("INSERT", "STOCK")));
    assert!(!passes(&record("MODIFY", "OUTBOX")), "an outbox record is only ever inserted");
    assert!(!passes(&record("INSERT", "RESERVATION")));
    assert!(!passes(&record("REMOVE", "STOCK")));
}

/// A request to an app, its status and JSON body.
async fn send(app: &axum::Router, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// The runtime over `t`, with `function`'s statements replaced.
fn runtime_with(t: &TestTable, function: &str, statements: Vec<Statement>) -> LocalRuntime {
    let replaced = BTreeMap::from([(function.to_owned(), statements)]);
    runtime_of(&t.store, topology().clone(), &replaced).unwrap()
}

#[tokio::test]
async fn a_function_whose_policy_lacks_an_action_it_calls_fails_as_on_aws_and_the_others_work() {
    let t = TestTable::new().await;
    let app = runtime_over(&t.store).router(RouterOptions::default()).unwrap();
    assert_eq!(send(&app, Method::PUT, "/v1/stock/G/w1", Some(json!({"onHand": 5}))).await.0, 201);

    // put-stock's template grants, less dynamodb:GetItem (resolved for this table).
    let runtime = runtime_over(&t.store);
    let mut statements = runtime.function("put-stock").unwrap().policy.statements.clone();
    for s in &mut statements {
        s.actions.retain(|a| a != "dynamodb:GetItem");
    }
    let app = runtime_with(&t, "put-stock", statements).router(RouterOptions::default()).unwrap();
    let (status, body) = send(&app, Method::PUT, "/v1/stock/G/w1", Some(json!({"onHand": 6}))).await;
    assert_eq!(status, 500, "AccessDenied is a fault of the deployment: {body}");
    assert_eq!(body["error"]["code"], "INTERNAL");
    assert!(!body.to_string().contains("AccessDenied"), "no internals leak: {body}");
    assert_eq!(t.store.get_stock("G", "w1").await.unwrap().on_hand, 5, "nothing written");
    // Every other route still works: their functions' policies are their own.
    assert_eq!(send(&app, Method::GET, "/v1/stock/G/w1", None).await.0, 200);
    let adjust = send(&app, Method::POST, "/v1/stock/G/w1/adjustments", Some(json!({"delta": 1}))).await;
    assert_eq!(adjust.0, 200, "{}", adjust.1);
    let reserve = json!({"orderId": "o-1", "lines": [{"sku": "G", "locationId": "w1", "quantity": 1}]});
    assert_eq!(send(&app, Method::POST, "/v1/reservations", Some(reserve)).await.0, 201);

    // The gate's answer, as the SDK sees it: AWS's AccessDeniedException, naming the function
    // and the action.
    let denied_policy = runtime_with(&t, "put-stock", vec![]);
    let client = &denied_policy.function("put-stock").unwrap().dynamodb;
    let err = client
        .query()
        .table_name(t.store.table())
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", aws_sdk_dynamodb::types::AttributeValue::S("STOCK#G".into()))
        .send()
        .await
        .unwrap_err();
    let service = err.as_service_error().expect("a service error, as AWS answers");
    assert_eq!(aws_sdk_dynamodb::error::ProvideErrorMetadata::code(service), Some("AccessDeniedException"));
    let message = aws_sdk_dynamodb::error::ProvideErrorMetadata::message(service).unwrap_or_default();
    assert!(message.contains("put-stock") && message.contains("dynamodb:Query"), "{message}");
}

#[tokio::test]
async fn a_route_the_template_does_not_have_is_not_served() {
    let t = TestTable::new().await;
    let mut without = topology().clone();
    without.functions.get_mut("list-holds").unwrap().routes.clear();
    let runtime = |topology: dev_server::Topology| runtime_of(&t.store, topology, &BTreeMap::new()).unwrap();
    let app = runtime(topology().clone()).router(RouterOptions::default()).unwrap();
    send(&app, Method::PUT, "/v1/stock/R/w1", Some(json!({"onHand": 1}))).await;
    assert_eq!(send(&app, Method::GET, "/v1/stock/R/w1/holds", None).await.0, 200);
    let app = runtime(without.clone()).router(RouterOptions::default()).unwrap();
    let (status, body) = send(&app, Method::GET, "/v1/stock/R/w1/holds", None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("NOT_FOUND")));
    assert_eq!(send(&app, Method::GET, "/v1/stock/R/w1", None).await.0, 200, "the other routes stay");

    // A function whose template entry does not set a variable it reads does not start.
    let mut unset = topology().clone();
    unset.functions.get_mut("get-reservation").unwrap().environment.remove("TABLE_NAME");
    let err = runtime(unset).router(RouterOptions::default()).unwrap_err();
    assert!(err.contains("get-reservation") && err.contains("TABLE_NAME"), "{err}");
}

#[test]
fn every_function_runs_with_exactly_the_environment_its_template_entry_gives_it() {
    let topology = topology();
    let names = names("inventory", "inventory-events", BTreeMap::new());
    for (name, spec) in &topology.functions {
        let env = names.environment(topology, spec).unwrap();
        // Globals and its own, nothing else: the process's environment does not leak in.
        assert_eq!(env.keys().collect::<Vec<_>>(), spec.environment.keys().collect::<Vec<_>>(), "{name}");
        assert_eq!(env["TABLE_NAME"], "inventory", "{name}");
        assert!(!env.values().any(|v| v.contains("${")), "{name}: {env:?}");
    }
    let publish = names.environment(topology, topology.function("publish-events").unwrap()).unwrap();
    assert!(publish["PUBLISH_DLQ"].ends_with("-publish-events-dlq"), "{publish:?}");
    assert_eq!(topology.function("expire-reservations").unwrap().timeout_seconds, 120);
    assert_eq!(topology.function("expire-reservations").unwrap().schedules[0].rate_seconds, 60);
}

/// `make sam-env`'s file (written by `make test` before the tests) points every function of the
/// template, and every variable of each, at the names the local runtime resolves them to.
#[test]
fn the_sam_env_file_covers_every_function_and_variable_with_the_local_names() {
    let path = dev_server::topology::repository_root().join(".local/sam-env.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} ({e}): run `make sam-env`", path.display()));
    let file: BTreeMap<String, BTreeMap<String, String>> = serde_json::from_str(&text).unwrap();
    let topology = topology();
    let queues = integration_tests::runtime::local_queues("http://127.0.0.1:4566");
    let names = names("inventory", "inventory-events", queues);
    assert_eq!(file.len(), topology.functions.len(), "one entry per function");
    for (name, spec) in &topology.functions {
        let entry =
            file.get(&spec.logical_id).unwrap_or_else(|| panic!("{name} ({}) missing", spec.logical_id));
        assert_eq!(entry, &names.environment(topology, spec).unwrap(), "{name}");
    }
}

/// A function's `Timeout` in the template sets its requests' deadline locally (less Lambda's
/// margin): a PUT whose reads hang answers 503 when put-stock's time is up, not the router's.
#[tokio::test]
async fn a_functions_template_timeout_is_its_requests_deadline() {
    let t = TestTable::new().await;
    let mut short = topology().clone();
    short.functions.get_mut("put-stock").unwrap().timeout_seconds = 2;
    let app =
        runtime_of(&t.store, short, &BTreeMap::new()).unwrap().router(RouterOptions::default()).unwrap();
    t.faults.plan("GetItem", integration_tests::Fault::Delay(std::time::Duration::from_secs(60)), 100);
    let started = std::time::Instant::now();
    let (status, body) = send(&app, Method::PUT, "/v1/stock/SLOW/w1", Some(json!({"onHand": 1}))).await;
    let took = started.elapsed();
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("SERVICE_UNAVAILABLE")));
    let budget = std::time::Duration::from_secs(2) - inventory::http::LAMBDA_MARGIN;
    assert!(took >= budget - std::time::Duration::from_millis(100), "gave up early, after {took:?}");
    assert!(took < budget + std::time::Duration::from_millis(500), "answered after {took:?}");
}

/// The principal `infra/own_stack.sh` names in `OrderEventPublishers` for the variant topology
/// it writes (`.local/topology-order-service.json`): the template as a shop that grants its order
/// service deploys it.
const ORDER_SERVICE: &str = "arn:aws:iam::000000000000:role/order-service";

fn order_service_topology() -> Topology {
    let path = dev_server::topology::repository_root().join(".local/topology-order-service.json");
    Topology::load_from(&path).unwrap_or_else(|e| panic!("{e} (infra/own_stack.sh writes it)"))
}

/// What the gate says of `principal` (with `statements` as its own policy) putting one event of
/// `source` on the template's bus, under `topology`'s bus policy.
fn put_event(
    topology: &Topology,
    principal: &str,
    statements: Vec<Statement>,
    source: &str,
) -> Result<(), String> {
    let names = names("inventory", "inventory-events", BTreeMap::new());
    let policy = FunctionPolicy {
        function: "caller".into(),
        principal: principal.into(),
        statements,
        resource_policies: names.resource_policies(topology).unwrap(),
        from_template: false,
    };
    let body = json!({"Entries": [{"EventBusName": "inventory-events", "Source": source, "DetailType": "OrderCompleted", "Detail": "{}"}]});
    policy.check("AWSEvents.PutEvents", body.to_string().as_bytes())
}

/// A function's own statements and principal, as the template gives them.
fn role_of(topology: &Topology, function: &str) -> (String, Vec<Statement>) {
    let names = names("inventory", "inventory-events", BTreeMap::new());
    let spec = topology.function(function).unwrap();
    (names.principal(spec), names.statements(topology, spec).unwrap())
}

#[test]
fn only_the_principals_the_parameter_names_may_put_order_events_and_the_services_roles_only_inventory_events()
{
    let admin = || vec![statement(Effect::Allow, &["events:*"], &["*"])];
    let denied_by_the_bus =
        |r: Result<(), String>| r.is_err_and(|e| e.contains("explicit deny in a resource-based policy"));
    for (name, t) in
        [("default parameters", topology().clone()), ("OrderEventPublishers set", order_service_topology())]
    {
        // The service's own roles: their events, never an order event, whatever the bus says.
        for function in ["publish-events", "audit-stock"] {
            let (principal, own) = role_of(&t, function);
            assert_eq!(put_event(&t, &principal, own.clone(), "inventory"), Ok(()), "{function} ({name})");
            assert!(
                denied_by_the_bus(put_event(&t, &principal, own.clone(), "orders")),
                "{function} ({name})"
            );
            let mut without_bus_policy = t.clone();
            without_bus_policy.resource_policies.clear();
            let alone = put_event(&without_bus_policy, &principal, own, "orders").unwrap_err();
            assert!(
                alone.contains("no identity-based policy allows"),
                "{function}'s own condition ({name}): {alone}"
            );
        }
        // A principal the parameter does not name, allowed everything by its own policy.
        let someone = "arn:aws:iam::000000000000:role/someone-else";
        assert!(denied_by_the_bus(put_event(&t, someone, admin(), "orders")), "{name}");
        assert_eq!(
            put_event(&t, someone, admin(), "inventory"),
            Ok(()),
            "only order events are kept back ({name})"
        );
    }
    // By default, nobody may put order events; the principal named in the parameter may, with no
    // grant of its own (the bus's Allow), and only order events.
    assert!(denied_by_the_bus(put_event(topology(), ORDER_SERVICE, admin(), "orders")));
    let t = order_service_topology();
    assert_eq!(put_event(&t, ORDER_SERVICE, vec![], "orders"), Ok(()));
    assert_eq!(put_event(&t, ORDER_SERVICE, admin(), "orders"), Ok(()));
    let other_source = put_event(&t, ORDER_SERVICE, vec![], "inventory").unwrap_err();
    assert!(other_source.contains("no identity-based policy allows"), "{other_source}");
}

#[test]
fn conditions_hold_as_iam_evaluates_them() {
    let context = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let condition = |operator: Operator, key: &str, values: &[&str]| Condition {
        operator,
        key: key.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    };
    let source = context(&[("events:source", "orders")]);
    assert!(condition(Operator::StringEquals, "events:source", &["x", "orders"]).holds(&source));
    assert!(
        condition(Operator::StringEquals, "Events:Source", &["orders"]).holds(&source),
        "keys ignore case"
    );
    assert!(
        !condition(Operator::StringEquals, "events:source", &["Orders"]).holds(&source),
        "values keep it"
    );
    assert!(
        !condition(Operator::StringEquals, "events:detail-type", &["orders"]).holds(&source),
        "a key the request lacks"
    );
    assert!(
        condition(Operator::StringNotEquals, "events:detail-type", &["orders"]).holds(&source),
        "negated: holds without the key"
    );
    assert!(!condition(Operator::StringNotEquals, "events:source", &["orders"]).holds(&source));
    assert!(condition(Operator::StringLike, "events:source", &["ord*"]).holds(&source));
    let role = context(&[("aws:PrincipalArn", "arn:aws:iam::000000000000:role/order-service")]);
    assert!(condition(
        Operator::ArnEquals,
        "aws:PrincipalArn",
        &["arn:aws:iam::000000000000:role/order-service"]
    )
    .holds(&role));
    assert!(condition(Operator::ArnLike, "aws:PrincipalArn", &["arn:aws:iam::*:role/order-*"]).holds(&role));
    assert!(!condition(
        Operator::ArnNotEquals,
        "aws:PrincipalArn",
        &["arn:aws:iam::000000000000:role/order-service"]
    )
    .holds(&role));
    assert!(condition(Operator::ArnNotLike, "aws:PrincipalArn", &["arn:aws:iam::*:role/other"]).holds(&role));
}
