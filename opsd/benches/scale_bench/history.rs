//! The history half of the bench: a year of timeline events, rollouts, audit entries and cost
//! checks written into a store file, then the timeline and history read back and timed.

use super::*;
use crate::scale::{count_rows, percentile, BenchClock, InProcessPlatform};

// ---------------------------------------------------------------------------------------------
// History: a year of events
// ---------------------------------------------------------------------------------------------

/// Timeline events a service records per day in this bench: one a minute.
const EVENTS_PER_DAY: i64 = 1_440;
/// Rollouts a service starts per day.
const ROLLOUTS_PER_DAY: i64 = 6;
/// Decisions per rollout (start, ten steps, the watch's end, the promotion).
const DECISIONS_PER_ROLLOUT: i64 = 12;
/// Audit entries per service per day (deploys, operator commands).
const AUDIT_PER_DAY: i64 = 10;
/// Services with a year of events: the one whose timeline is read and three others.
const HISTORY_SERVICES: usize = 4;

/// Writes `days` of history for [`HISTORY_SERVICES`] services straight into the store file.
fn seed_history(store_path: &Path, days: i64, end_ms: i64) {
    let start_ms = end_ms - days * 86_400_000;
    let time = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .expect("a time")
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let mut connection = rusqlite::Connection::open(store_path).expect("the store file opens");
    let transaction = connection.transaction().expect("a transaction");
    {
        let mut insert_rollout = transaction
            .prepare(
                "INSERT INTO rollouts (id, service, stable_version, canary_version, plan_name, \
                 phase, state_json, revision, created_at, updated_at, finished_at, outcome) \
                 VALUES (?, ?, ?, ?, ?, 'promoted', ?, 2, ?, ?, ?, 'promoted')",
            )
            .unwrap();
        let mut insert_decision = transaction
            .prepare(
                "INSERT INTO decisions (rollout_id, seq, at, step_index, verdict, summary, \
                 evidence_json) VALUES (?, ?, ?, ?, 'advance', ?, ?)",
            )
            .unwrap();
        let mut insert_event = transaction
            .prepare(
                "INSERT INTO events (at, service, rollout_id, kind, message, data_json) \
                 VALUES (?, ?, ?, ?, ?, '{}')",
            )
            .unwrap();
        let mut insert_audit = transaction
            .prepare(
                "INSERT INTO audit_log (at, actor, role, action, target, reason, detail_json) \
                 VALUES (?, 'ci', 'operator', 'deploy', ?, 'release', '{}')",
            )
            .unwrap();
        let mut insert_cost_check = transaction
            .prepare(
                "INSERT INTO cost_checks (checked_at, today, state, forecast_over_budget, \
                 report_json) VALUES (?, ?, 'ok', 0, '{\"anomalies\":[]}')",
            )
            .unwrap();
        let plan = preset("Linear10PercentEvery1Minute").expect("a preset");
        let evidence = serde_json::json!({
            "canary": {"requests": 3000, "errors": 2},
            "baseline": {"requests": 27000, "errors": 30},
            "verdict": "pass",
        })
        .to_string();
        let kinds = [
            "decision_advance",
            "notification",
            "alarm_state",
            "stable_health",
        ];
        for service_index in 0..HISTORY_SERVICES {
            let service = format!("history-{service_index}");
            let release = |version: &str| ReleaseSpec {
                service: service.clone(),
                version: version.into(),
                env: Default::default(),
                env_from: Default::default(),
            };
            let rollout_every_ms = 86_400_000 / ROLLOUTS_PER_DAY;
            let rollouts = days * ROLLOUTS_PER_DAY;
            for index in 0..rollouts {
                let created_ms = start_ms + index * rollout_every_ms;
                let id = format!("{service}-{index:06}");
                let mut state = RolloutState::new(
                    id.clone(),
                    release(&format!("v{index}")),
                    release(&format!("v{}", index + 1)),
                    plan.clone(),
                    created_ms,
                );
                state.phase = Phase::Promoted;
                state.finished_at_ms = Some(created_ms + 15 * 60_000);
                insert_rollout
                    .execute(rusqlite::params![
                        id,
                        service,
                        format!("v{index}"),
                        format!("v{}", index + 1),
                        plan.name,
                        serde_json::to_string(&state).unwrap(),
                        time(created_ms),
                        time(created_ms + 15 * 60_000),
                        time(created_ms + 15 * 60_000),
                    ])
                    .unwrap();
                for seq in 1..=DECISIONS_PER_ROLLOUT {
                    insert_decision
                        .execute(rusqlite::params![
                            id,
                            seq,
                            time(created_ms + seq * 60_000),
                            seq - 1,
                            format!("step {seq}: canary 0.07 % errors against 0.11 %; advancing"),
                            evidence,
                        ])
                        .unwrap();
                }
            }
            let events = days * EVENTS_PER_DAY;
            let event_every_ms = 86_400_000 / EVENTS_PER_DAY;
            for index in 0..events {
                let at_ms = start_ms + index * event_every_ms + service_index as i64;
                let rollout_index = (at_ms - start_ms) / rollout_every_ms;
                let kind = kinds[(index % kinds.len() as i64) as usize];
                // Decisions and notifications of a rollout name it; the others do not.
                let rollout_id = (kind == "decision_advance" || kind == "notification")
                    .then(|| format!("{service}-{rollout_index:06}"));
                insert_event
                    .execute(rusqlite::params![
                        time(at_ms),
                        service,
                        rollout_id,
                        kind,
                        format!("{service}: {kind} number {index}"),
                    ])
                    .unwrap();
            }
            for index in 0..days * AUDIT_PER_DAY {
                insert_audit
                    .execute(rusqlite::params![
                        time(start_ms + index * 86_400_000 / AUDIT_PER_DAY),
                        service,
                    ])
                    .unwrap();
            }
        }
        for hour in 0..days * 24 {
            let at_ms = start_ms + hour * 3_600_000;
            insert_cost_check
                .execute(rusqlite::params![time(at_ms), &time(at_ms)[..10]])
                .unwrap();
        }
    }
    transaction.commit().expect("the history is written");
}

/// Times `runs` calls of `read`, returning the median and the slowest in ms and the last answer's size.
async fn time_reads<F, Fut>(runs: usize, mut read: F) -> (f64, f64, usize)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let mut times = Vec::with_capacity(runs);
    let mut size = 0;
    for _ in 0..runs {
        let started = Instant::now();
        size = read().await;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    (percentile(&times, 0.5), times[times.len() - 1], size)
}

pub(crate) async fn history_part(days: i64) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let store_path = directory.path().join("opsd.db");
    let end_ms = START_MS;
    Store::open(&store_path)
        .await
        .expect("the store opens")
        .close()
        .await;
    let started = Instant::now();
    seed_history(&store_path, days, end_ms);
    let service = "history-0";
    let events_total = count_rows(&store_path, "events");
    println!();
    println!(
        "History: {days} days for {HISTORY_SERVICES} services, each with {EVENTS_PER_DAY} timeline events a day ({} for {service}, {events_total} in all), {ROLLOUTS_PER_DAY} rollouts a day with {DECISIONS_PER_ROLLOUT} decisions each, {AUDIT_PER_DAY} audit entries a day; {} cost checks; written in {:.1} s; store {:.0} MiB",
        days * EVENTS_PER_DAY,
        days * 24,
        started.elapsed().as_secs_f64(),
        std::fs::metadata(&store_path).map(|meta| meta.len()).unwrap_or(0) as f64 / 1024.0 / 1024.0,
    );

    let store = Store::open(&store_path).await.expect("the store opens");
    let time = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).expect("a time");
    let filter =
        |service: Option<&str>, until_days_back: Option<i64>, audit: bool| TimelineFilter {
            service: service.map(str::to_string),
            until: until_days_back.map(|days_back| time(end_ms - days_back * 86_400_000)),
            limit: 200,
            include_audit: audit,
            ..TimelineFilter::default()
        };
    let deep = days - days / 12;
    let month = (days / 12).max(1);
    let cases: Vec<(String, TimelineFilter)> = vec![
        (
            format!("timeline of {service}, newest 200"),
            filter(Some(service), None, false),
        ),
        (
            format!("timeline of {service}, newest 200, operator (audit merged)"),
            filter(Some(service), None, true),
        ),
        (
            format!("timeline of {service}, 200 before {month} days back"),
            filter(Some(service), Some(month), false),
        ),
        (
            format!("timeline of {service}, 200 before {deep} days back"),
            filter(Some(service), Some(deep), false),
        ),
        (
            format!("timeline of {service}, 200 before {deep} days back, operator"),
            filter(Some(service), Some(deep), true),
        ),
        (
            "timeline, all services, newest 200".into(),
            filter(None, None, false),
        ),
        (
            format!("timeline, all services, 200 before {deep} days back"),
            filter(None, Some(deep), false),
        ),
        (
            format!("timeline of {service}, kind alarm_state, newest 200"),
            TimelineFilter {
                kind: Some("alarm_state".into()),
                ..filter(Some(service), None, false)
            },
        ),
        (
            format!("timeline of one rollout of {service}"),
            TimelineFilter {
                rollout_id: Some(format!("{service}-{:06}", days * ROLLOUTS_PER_DAY / 2)),
                ..filter(None, None, false)
            },
        ),
    ];
    println!();
    println!("| read | median ms | max ms | entries |");
    println!("|---|---:|---:|---:|");
    for (name, filter) in &cases {
        let (median, max, size) = time_reads(10, || async {
            store.timeline(filter).await.expect("the timeline").len()
        })
        .await;
        println!("| {name} | {median:.2} | {max:.2} | {size} |");
    }

    // The history (`opsd history`) and one rollout, through the daemon.
    let mut config_yaml = String::from("services:\n");
    for index in 0..HISTORY_SERVICES {
        config_yaml.push_str(&format!("  history-{index}:\n    initial_version: v1\n"));
    }
    let config = Config::parse(
        "opsd.yaml",
        &config_yaml,
        directory.path(),
        Path::new("/usr/bin/steno"),
    )
    .expect("the history configuration is valid");
    let platform = Arc::new(InProcessPlatform::default());
    let platforms = Platforms {
        runner: platform.clone(),
        shifter: platform.clone(),
        metrics: platform.clone(),
        alarms: Arc::new(NoPlatformExtras),
        cdn: Arc::new(NoPlatformExtras),
    };
    let databases = Arc::new(DatabasePlatforms::new(&config));
    let (notifier, _delivery) = Notifier::start(Vec::new(), Vec::new(), None);
    let clock = Arc::new(BenchClock(AtomicI64::new(end_ms)));
    let daemon =
        Daemon::start_with_clock(config, store.clone(), platforms, databases, notifier, clock)
            .await
            .expect("the daemon starts");
    for limit in [20, 500] {
        let (median, max, size) = time_reads(10, || async {
            daemon
                .history(service, limit)
                .await
                .expect("the history")
                .len()
        })
        .await;
        println!("| history of {service}, newest {limit} rollouts with their decisions | {median:.2} | {max:.2} | {size} |");
    }
    let old_rollout = format!("{service}-{:06}", 3);
    let (median, max, size) = time_reads(10, || async {
        daemon
            .rollout(&old_rollout)
            .await
            .expect("the rollout")
            .decisions
            .len()
    })
    .await;
    println!("| one rollout from {days} days back, with its decisions | {median:.2} | {max:.2} | {size} |");

    println!();
    println!("Query plans (EXPLAIN QUERY PLAN):");
    store.close().await;
    print_query_plans(&store_path, service, end_ms - deep * 86_400_000);
}

/// Prints the plans of the timeline's and the history's queries for `service`.
fn print_query_plans(store_path: &Path, service: &str, until_ms: i64) {
    let connection = rusqlite::Connection::open(store_path).expect("the store file opens");
    let until = chrono::DateTime::from_timestamp_millis(until_ms)
        .expect("a time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let queries = [
        (
            "merged timeline, one service, until",
            opsd::store::MERGED_TIMELINE_QUERY.to_string(),
            vec![
                rusqlite::types::Value::Text(service.into()),
                rusqlite::types::Value::Null,
                rusqlite::types::Value::Null,
                rusqlite::types::Value::Text(until),
                rusqlite::types::Value::Integer(200),
                rusqlite::types::Value::Null,
                rusqlite::types::Value::Integer(1),
                rusqlite::types::Value::Null,
            ],
        ),
        (
            "history: rollouts of one service",
            format!("SELECT id {}", opsd::store::ROLLOUTS_OF_ONE_SERVICE),
            vec![
                rusqlite::types::Value::Text(service.into()),
                rusqlite::types::Value::Integer(20),
            ],
        ),
    ];
    for (name, sql, parameters) in queries {
        println!("- {name}:");
        let mut statement = connection
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("the plan");
        let rows = statement
            .query_map(rusqlite::params_from_iter(parameters), |row| {
                row.get::<_, String>(3)
            })
            .expect("the plan's rows");
        for row in rows {
            println!("    {}", row.expect("a plan row"));
        }
    }
}
