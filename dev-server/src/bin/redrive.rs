//! Moves messages from a dead-letter queue back where they came from (see docs/events.md, "Dead letters and redrive").
//!
//!   redrive [--dlq NAME|URL] [--to-queue NAME|URL | --to-bus NAME] [--dry-run]
//!
//! Defaults: `--dlq inventory-order-events-dlq`, its source queue (ListDeadLetterSourceQueues);
//! for `inventory-publish-events-dlq` the default target is the event bus (`EVENT_BUS_NAME`).
//! AWS settings come from the environment (`make redrive` points them at the local stack).

use inventory::config::{aws_config, queue_url, Config};
use inventory::redrive::{redrive, source_queue, Target};

const USAGE: &str = "usage: redrive [--dlq NAME|URL] [--to-queue NAME|URL | --to-bus NAME] [--dry-run]";

#[tokio::main]
async fn main() {
    if let Err(message) = run().await {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let config = Config::from_env();
    let mut dlq = format!("{}-dlq", config.order_events_queue);
    let (mut to_queue, mut to_bus, mut dry_run) = (None, None, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dlq" => dlq = args.next().ok_or(USAGE)?,
            "--to-queue" => to_queue = Some(args.next().ok_or(USAGE)?),
            "--to-bus" => to_bus = Some(args.next().ok_or(USAGE)?),
            "--dry-run" => dry_run = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let aws = aws_config().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let events = aws_sdk_eventbridge::Client::new(&aws);
    let dlq_url = queue_url(&sqs, &dlq).await?;
    let publish_dlq = queue_url(&sqs, &config.publish_dead_letter_queue).await.ok();
    let target = match (to_queue, to_bus) {
        (Some(_), Some(_)) => return Err(format!("give --to-queue or --to-bus, not both\n{USAGE}")),
        (Some(queue), None) => Target::Queue(queue_url(&sqs, &queue).await?),
        (None, Some(bus)) => Target::Bus(bus),
        (None, None) if publish_dlq.as_deref() == Some(dlq_url.as_str()) => {
            Target::Bus(config.event_bus_name)
        }
        (None, None) => Target::Queue(source_queue(&sqs, &dlq_url).await?),
    };
    let report = redrive(&sqs, &events, &dlq_url, &target, dry_run).await?;
    for seen in &report.seen {
        println!(
            "{}  received {}x  {}",
            seen.message_id,
            seen.receive_count.as_deref().unwrap_or("?"),
            seen.summary
        );
    }
    let to = match &target {
        Target::Queue(url) => format!("queue {url}"),
        Target::Bus(bus) => format!("bus {bus}"),
    };
    if dry_run {
        println!("dry run: would move {} message(s) from {dlq_url} to {to}", report.seen.len());
    } else {
        println!(
            "moved {} message(s) from {dlq_url} to {to}; {} could not be moved",
            report.moved, report.failed
        );
    }
    if report.undeleted > 0 {
        return Err(format!(
            "{} moved message(s) could not be deleted from the DLQ: a later run would move them again",
            report.undeleted
        ));
    }
    if report.failed > 0 {
        return Err(format!("{} message(s) stayed in the DLQ", report.failed));
    }
    Ok(())
}
