//! `opsd up`: opens the store, starts the local platform (release processes behind one router
//! process per service, both outliving opsd so traffic keeps flowing if opsd dies; their usage
//! is recorded per day for the local cost model), the notifier, the
//! reconciler, the dashboard's overview feed and the API, creates API tokens on first start once
//! everything listens, prints where everything is with a one-time dashboard login link, and stops it all (children included) on Ctrl-C or SIGTERM.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::api::gateway::Gateway;
use crate::api::{self, ApiState};
use crate::auth::ensure_tokens;
use crate::config::Config;
use crate::control::Daemon;
use crate::dashboard::feed::OverviewFeed;
use crate::dashboard::sessions::Sessions;
use crate::leadership::{Leadership, LeaseTiming, Role};
use crate::loadgen::{run_load, LoadSpec};
use crate::notify::Notifier;
use crate::ops::usage::UsageRecorder;
use crate::platform::factory;
use crate::platform::secrets::Secrets;
use crate::store::{Store, TokenRole};

/// Where `opsd up` writes the operator token for local CLI use (readable by the owner only).
pub fn operator_token_path(config: &Config) -> PathBuf {
    config.data_dir.join("operator.token")
}

pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OPSD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .try_init();
}

fn write_private_file(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())
}

/// Runs the daemon until Ctrl-C or SIGTERM. `environment` is opsd's own environment, which
/// `secrets` of the `env` kind are read from.
pub async fn run(mut config: Config, environment: HashMap<String, String>) -> anyhow::Result<()> {
    init_logging();
    let secrets = Secrets::new(config.secrets.clone(), environment);
    secrets
        .check_all()
        .context("a secret named in opsd.yaml cannot be read")?;
    crate::private_files::ensure_private_dir(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let store = Store::open_location(&config.store)
        .await
        .context("cannot open the store")?;
    // The API address is known before any release starts, so releases can be told where the
    // status document is (their maintenance banner reads it).
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let api_addr = listener.local_addr()?;
    crate::data_plane::claim_data_directory(&config, api_addr)?;
    point_releases_at_the_status_document(&mut config, api_addr);

    // Until this instance leads, its API address answers reads from the store and hands every
    // other request to the leader's.
    let instance = Leadership::instance_name(&config.data_dir);
    let leadership = Leadership::start(
        store.clone(),
        instance.clone(),
        api_addr.to_string(),
        LeaseTiming::DEFAULT,
    );
    let gateway = Gateway::new(leadership.watch());
    match crate::follower::reading_api(&config, &store, &secrets, &instance).await {
        Ok(reader) => gateway.install_reader(reader),
        Err(error) => {
            tracing::info!(error = %format!("{error:#}"), "until this instance leads, the leader answers its reads too")
        }
    }
    let (server_stop, server_stopped) = tokio::sync::watch::channel(false);
    let serving =
        axum::serve(listener, gateway.router()).with_graceful_shutdown(until_true(server_stopped));
    let server = tokio::spawn(async move { serving.await });
    let led = tokio::select! {
        led = wait_to_lead(&leadership, api_addr) => led,
        _ = shutdown_signal() => {
            let _ = server_stop.send(true);
            let _ = server.await;
            leadership.stop().await;
            store.close().await;
            crate::data_plane::release_data_directory(&config);
            println!("opsd stopped (it was following)");
            return Ok(());
        }
    };
    let led = match led {
        Ok(led) => led,
        Err(why) => {
            let _ = server_stop.send(true);
            crate::data_plane::release_data_directory(&config);
            return Err(anyhow::anyhow!("opsd could not lead: {why}"));
        }
    };
    // Every write of the leader is fenced by its lease, and every change on the platforms
    // waits for its deadline.
    let store = store.fenced(&instance, led.epoch);

    let fail_static = crate::data_plane::fail_static_setup(&config)?;
    let platform = factory::start_local_platform(&config, &secrets, &fail_static)
        .await
        .context("cannot start the local platform")?;
    // A public port of 0 in opsd.yaml means any free port: views show the one bound.
    for service in config.services.values_mut() {
        if let Some(bound) = platform.public_address(&service.name) {
            service.public_addr = bound;
        }
    }
    let platforms = crate::platform::fenced::fenced(
        factory::service_platforms(&config, platform.clone(), &secrets).await,
        Arc::new(leadership.permit()),
    );
    let databases = Arc::new(factory::DatabasePlatforms::new(&config));
    let (notifier, notifier_task) = Notifier::start(
        config.notification_targets.clone(),
        config.notification_routes.clone(),
        Some(store.clone()),
    );
    let notifier_for_costs = notifier.clone();
    let notifier_for_drills = notifier.clone();
    let daemon = match Daemon::start(
        config.clone(),
        store.clone(),
        platforms,
        databases,
        notifier,
    )
    .await
    {
        Ok(daemon) => daemon,
        Err(error) => {
            platform.shutdown().await;
            return Err(anyhow::anyhow!("opsd could not start: {error}"));
        }
    };
    // Releases a previous opsd left running that this one will not ask for again get no
    // traffic and are stopped now.
    let in_use = daemon.releases_in_use().await;
    for stopped in platform.supervisor().stop_unclaimed(&in_use).await {
        println!("stopped {stopped}, left running by the previous opsd and no longer in use");
    }
    for line in crate::ops::drill::clean_up_interrupted_drills(&config, &store).await {
        println!("{line}");
    }
    let (stop_sender, stop_receiver) = tokio::sync::watch::channel(false);
    let (overview_feed, overview_feed_task) =
        OverviewFeed::start(daemon.clone(), stop_receiver.clone());
    let reconciler = tokio::spawn(daemon.clone().run(stop_receiver.clone()));
    let production_watch = tokio::spawn(daemon.clone().watch_production(stop_receiver.clone()));
    let sample_retention = tokio::spawn(daemon.clone().run_sample_retention(stop_receiver.clone()));
    let store_checkpoints =
        tokio::spawn(daemon.clone().run_store_checkpoints(stop_receiver.clone()));
    let cost_scheduler = tokio::spawn(run_scheduled_cost_checks(
        config.clone(),
        store.clone(),
        notifier_for_costs,
        stop_receiver.clone(),
    ));
    let drills_due = drills_due_now(&config, &store).await;
    let (first_round_sender, first_round) = tokio::sync::oneshot::channel();
    let drill_scheduler = tokio::spawn(run_scheduled_drills(
        config.clone(),
        store.clone(),
        notifier_for_drills,
        stop_receiver.clone(),
        first_round_sender,
    ));
    let local_services: Vec<String> = config
        .services
        .values()
        .filter(|service| service.aws.is_none())
        .map(|service| service.name.clone())
        .collect();
    let usage_recorder = tokio::spawn(
        UsageRecorder::new(
            platform.clone(),
            store.clone(),
            local_services,
            crate::ops::usage::unix_second(),
        )
        .run(stop_receiver),
    );

    // A database never drilled would keep the drill gate closed for the first deploy: its
    // first drill runs before the API answers (connections wait in the listener's queue).
    if !drills_due.is_empty() {
        wait_for_first_drills(&store, &drills_due, first_round).await;
    }

    // Tokens are created only now that everything listens, so the ones shown once are not lost
    // to a start that fails afterwards.
    // Sessions an earlier opsd, or the previous leader, started stay logged in.
    let sessions = Arc::new(Sessions::kept_in(store.clone()));
    match sessions.load(daemon.now_ms()).await {
        Ok(0) => {}
        Ok(loaded) => tracing::info!(sessions = loaded, "dashboard sessions carried over"),
        Err(error) => {
            tracing::warn!(error = %error, "cannot read the dashboard sessions; everyone logs in again")
        }
    }
    let login_link = match prepare_logins(&config, &store, &sessions, daemon.now_ms()).await {
        Ok(code) => code.map(|code| format!("http://{api_addr}/login?once={code}")),
        Err(error) => {
            let _ = stop_sender.send(true);
            platform.shutdown().await;
            return Err(error);
        }
    };
    // The API answers before anything is printed: whoever reads the addresses (a person, a
    // script, a test) can use them at once.
    gateway.install(api::router(ApiState {
        daemon: daemon.clone(),
        sessions,
        feed: overview_feed,
    }));
    println!("opsd API        http://{api_addr}");
    println!("dashboard       http://{api_addr}/");
    if let Some(link) = login_link {
        println!("                one-time operator login (15 min): {link}");
    }
    for service in config.services.values() {
        let public = match &service.aws {
            Some(aws) => aws.describe_target(),
            None => format!(
                "http://{}",
                platform
                    .public_address(&service.name)
                    .unwrap_or(service.public_addr)
            ),
        };
        let stable = daemon
            .status(Some(&service.name))
            .await
            .ok()
            .and_then(|statuses| statuses.into_iter().next())
            .map(|status| status.stable_version)
            .unwrap_or_default();
        println!("{:<15} {public}   (stable {stable})", service.name);
    }
    println!("press Ctrl-C to stop");

    let lost = tokio::select! {
        _ = shutdown_signal() => None,
        why = leadership.until_lost() => Some(why),
    };
    tracing::info!("shutting down");
    let _ = server_stop.send(true);
    let served = server.await;
    let _ = stop_sender.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), reconciler).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), production_watch).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), sample_retention).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), store_checkpoints).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), usage_recorder).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), overview_feed_task).await;
    drill_scheduler.abort();
    cost_scheduler.abort();
    notifier_task.abort();
    if let Some(why) = lost {
        // The data plane fails static: routers and releases keep serving the last split, and
        // the next leader (or this one, restarted) takes them over.
        leadership.stop().await;
        store.close().await;
        crate::data_plane::release_data_directory(&config);
        return Err(anyhow::anyhow!(
            "this opsd no longer leads ({why}); it stopped acting and exits so that its \
             supervisor starts it again as a follower"
        ));
    }
    platform.shutdown().await;
    leadership.stop().await;
    store.close().await;
    crate::data_plane::release_data_directory(&config);
    served
        .context("the API server task failed")?
        .context("the API server failed")?;
    println!("opsd stopped");
    Ok(())
}

/// Waits until this instance leads, saying whom it follows meanwhile.
async fn wait_to_lead(
    leadership: &Leadership,
    api_addr: std::net::SocketAddr,
) -> Result<crate::store::LeaseHolder, String> {
    let mut role = leadership.watch();
    let mut announced = None;
    loop {
        let now = role.borrow_and_update().clone();
        match now {
            Role::Leading(holder) => {
                println!(
                    "leader          this instance ({}), epoch {}",
                    leadership.instance(),
                    holder.epoch
                );
                return Ok(holder);
            }
            Role::Lost(why) => return Err(why),
            Role::Following(Some(leader)) if announced.as_ref() != Some(&leader.instance) => {
                println!(
                    "opsd API        http://{api_addr} (following: requests go to the leader)"
                );
                println!(
                    "following       {} (API {}), epoch {} since {}; this instance takes over \
                     if its lease lapses",
                    leader.instance,
                    leader.api,
                    leader.epoch,
                    leader
                        .since
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
                announced = Some(leader.instance);
            }
            Role::Starting | Role::Following(_) => {}
        }
        if role.changed().await.is_err() {
            return Err("the lease task ended".into());
        }
    }
}

/// Resolves once `flag` is true (or its sender is gone).
async fn until_true(mut flag: tokio::sync::watch::Receiver<bool>) {
    let _ = flag.wait_for(|stop| *stop).await;
}

/// Creates the first API tokens when the store has none (printing them, once) and a one-time
/// dashboard login code for the operator token named `operator` (or the oldest operator token).
async fn prepare_logins(
    config: &Config,
    store: &Store,
    sessions: &Sessions,
    now_ms: i64,
) -> anyhow::Result<Option<String>> {
    if let Some(tokens) = ensure_tokens(store)
        .await
        .context("cannot create API tokens")?
    {
        let path = operator_token_path(config);
        write_private_file(&path, &tokens.operator)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("created API tokens (shown once):");
        println!(
            "  operator: {}   (also saved to {})",
            tokens.operator,
            path.display()
        );
        println!("  viewer:   {}", tokens.viewer);
    }
    let tokens = store
        .list_tokens()
        .await
        .context("cannot read API tokens")?;
    let operator = tokens
        .iter()
        .filter(|token| token.role == TokenRole::Operator)
        .min_by_key(|token| (token.name != "operator", token.created_at));
    Ok(operator.map(|token| sessions.one_time_code(&token.token_hash, now_ms)))
}

/// Sets `STENO_STATUS_URL` (unless opsd.yaml set it) for every local service's releases to the
/// public status document this opsd serves at `api_addr`, so Steno's maintenance banner works
/// with no manual step (R-WINDOW-5).
fn point_releases_at_the_status_document(config: &mut Config, api_addr: std::net::SocketAddr) {
    let reachable = if api_addr.ip().is_unspecified() {
        std::net::SocketAddr::from(([127, 0, 0, 1], api_addr.port()))
    } else {
        api_addr
    };
    let url = format!("http://{reachable}/status.json");
    for service in config.services.values_mut() {
        if service.aws.is_none() {
            service
                .env
                .entry("STENO_STATUS_URL".to_string())
                .or_insert_with(|| url.clone());
        }
    }
}

/// How long `opsd up` waits for the drills due at its start before it serves the API anyway.
const FIRST_DRILLS_WAIT: Duration = Duration::from_secs(120);

/// The databases whose drill is due now (on a first start: all of them).
async fn drills_due_now(config: &Config, store: &Store) -> Vec<String> {
    let mut due = Vec::new();
    for database in config.databases.values() {
        if matches!(
            crate::ops::drill::drill_is_due(store, database).await,
            Ok(true)
        ) {
            due.push(database.name.clone());
        }
    }
    due
}

/// Waits (at most [`FIRST_DRILLS_WAIT`]) for the scheduler's first round, saying what it does
/// and how each drill ended.
async fn wait_for_first_drills(
    store: &Store,
    due: &[String],
    first_round: tokio::sync::oneshot::Receiver<()>,
) {
    println!(
        "drills          running the drill of {} before accepting deploys (the drill gate needs one)",
        due.join(", ")
    );
    let started = std::time::Instant::now();
    if tokio::time::timeout(FIRST_DRILLS_WAIT, first_round)
        .await
        .is_err()
    {
        println!(
            "drills          still running after {} s; deploys are refused by the drill gate until one passes",
            FIRST_DRILLS_WAIT.as_secs()
        );
        return;
    }
    for database in due {
        let outcome = match store.list_drills(Some(database), 1).await {
            Ok(drills) => drills
                .into_iter()
                .next()
                .and_then(|drill| drill.outcome)
                .unwrap_or_else(|| "did not run (see the log)".into()),
            Err(error) => format!("unknown ({error})"),
        };
        println!(
            "drills          {database}: {outcome} in {:.1} s{}",
            started.elapsed().as_secs_f64(),
            if outcome == "passed" {
                ""
            } else {
                "; deploys are refused by the drill gate (`opsd drill list` says why)"
            }
        );
    }
}

/// How often the scheduler looks for databases whose drill is due.
const DRILL_SCHEDULE_CHECK: Duration = Duration::from_secs(30);

/// Runs each database's drill when its schedule says one is due (a drill that never ran is due
/// at once) and takes its scheduled snapshots, one database at a time, until `shutdown`. A drill
/// that fails pages (critical); one that cannot run warns once a day. `first_round` is told when
/// the first look at every database is over. Started after the stable releases are ready, so a
/// SQLite file Steno creates on its first start exists.
async fn run_scheduled_drills(
    config: Config,
    store: Store,
    notifier: Notifier,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    first_round: tokio::sync::oneshot::Sender<()>,
) {
    let mut first_round = Some(first_round);
    if config.databases.is_empty() {
        return;
    }
    loop {
        for database in config.databases.values() {
            match crate::ops::drill::drill_is_due(&store, database).await {
                Ok(true) => {
                    let name = database.name.clone();
                    let progress = move |line: &str| tracing::info!(database = %name, "{line}");
                    let result = crate::ops::drill::run_drill(
                        &config,
                        &store,
                        database,
                        &crate::ops::drill::DrillOptions::default(),
                        &progress,
                    )
                    .await;
                    if let Some(notification) = crate::ops::drill::scheduled_drill_notification(
                        &database.name,
                        result.as_ref(),
                        chrono::Utc::now(),
                    ) {
                        notifier.send(notification);
                    }
                    match result {
                        Ok(report)
                            if report.outcome == crate::core::drill::DrillOutcome::Passed =>
                        {
                            tracing::info!(database = %database.name, drill = %report.id, "scheduled drill passed")
                        }
                        Ok(report) => tracing::warn!(
                            database = %database.name,
                            drill = %report.id,
                            reasons = %report.reasons.join("; "),
                            "scheduled drill failed"
                        ),
                        Err(error) => {
                            tracing::warn!(database = %database.name, error = %error, "scheduled drill could not run")
                        }
                    }
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(database = %database.name, error = %error, "cannot read drill history")
                }
            }
            match crate::ops::drill::snapshot_is_due(&store, database).await {
                Ok(true) => {
                    match crate::ops::drill::scheduled_snapshot(&config, &store, database).await {
                        Ok(snapshot) => {
                            tracing::info!(database = %database.name, snapshot = %snapshot.id, "scheduled snapshot taken")
                        }
                        Err(error) => {
                            tracing::warn!(database = %database.name, error = %error, "scheduled snapshot failed")
                        }
                    }
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(database = %database.name, error = %error, "cannot read snapshot history")
                }
            }
        }
        if let Some(sender) = first_round.take() {
            let _ = sender.send(());
        }
        tokio::select! {
            _ = tokio::time::sleep(DRILL_SCHEDULE_CHECK) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Checks the cost budgets every `costs.check_interval` (the first check a few seconds after
/// start) and sends a notification for each change of state or new anomaly, until `shutdown`.
async fn run_scheduled_cost_checks(
    config: Config,
    store: Store,
    notifier: Notifier,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let Some(costs) = config.costs.clone() else {
        return;
    };
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        _ = shutdown.changed() => return,
    }
    let source = crate::platform::factory::cost_source(&costs, &store).await;
    loop {
        let today = crate::ops::costs::utc_today();
        match crate::ops::costs::check_and_notify(&costs, &store, source.as_ref(), today, &notifier)
            .await
        {
            Ok(outcome) => tracing::info!(
                check = outcome.check_id,
                state = ?outcome.report.state,
                notified = outcome.notified.len(),
                "cost check done"
            ),
            Err(error) => tracing::warn!(error = %error, "cost check could not run"),
        }
        tokio::select! {
            _ = tokio::time::sleep(costs.check_interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// Whether opsd runs in the foreground of the terminal its stderr is: a progress line is shown
/// only then, so `opsd load ... &` does not write into the terminal another command is using.
fn in_the_foreground_of_a_terminal() -> bool {
    // SAFETY: isatty, tcgetpgrp and getpgrp only read process and terminal state.
    unsafe { libc::isatty(2) == 1 && libc::tcgetpgrp(2) == libc::getpgrp() }
}

/// `opsd load`: open-loop traffic with a progress line on stderr while in the foreground.
pub async fn run_load_command(target: &str, rps: u32, duration: Duration) -> anyhow::Result<()> {
    let spec = LoadSpec::new(target, rps, duration);
    let mut shown = false;
    let report = run_load(spec, |progress| {
        if !in_the_foreground_of_a_terminal() {
            return;
        }
        shown = true;
        eprint!(
            "\r{:>5.1} s  sent {}  ok {}  errors {}  dropped {}      ",
            progress.elapsed.as_secs_f64(),
            progress.sent,
            progress.ok,
            progress.errors,
            progress.dropped
        );
    })
    .await;
    if shown {
        eprintln!();
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    Ok(())
}
