//! End to end on the `aws` platform against a local AWS emulator (moto behind the CBOR front):
//! a Lambda function with published versions and a `live` alias; `opsd up` drives rollouts by
//! the alias's routing weights while this test plays Lambda's traffic, writing per-version
//! metrics into CloudWatch according to the weights it reads off the alias. Every assertion is
//! on the emulator's state (alias, alarms, invalidations), not on opsd's log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::types::StateValue;
use e2e_tests::binary;
use e2e_tests::lambda_fixture::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_rollouts_shift_the_alias_and_roll_back_on_errors_and_alarms() {
    binary("opsd");
    let fixture = Fixture::new().await;
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &fixture.emulator.endpoint_url(),
        &fixture.distribution_id,
    );
    let error_rates: Arc<Mutex<HashMap<String, f64>>> = Arc::default();
    let traffic = start_traffic(
        fixture.lambda.clone(),
        fixture.cloudwatch.clone(),
        error_rates.clone(),
    );
    let (_daemon, opsd) = tokio::task::block_in_place(|| start_opsd(dir.path()));

    // A healthy canary (version 2) goes through the steps of R-CANARY-1 and is promoted: the
    // alias ends on version 2 with no weights, and the promotion invalidated the CDN (R-WATCH-3).
    let (code, out) = blocking({
        let opsd = opsd.clone();
        move || {
            opsd.cli(&[
                "deploy",
                "steno",
                "--version",
                "2",
                "--wait",
                "--timeout",
                "120s",
            ])
        }
    })
    .await;
    assert_eq!(code, 0, "a healthy version is promoted:\n{out}");
    fixture.expect_alias("2", HashMap::new()).await;
    let rollout = blocking({
        let opsd = opsd.clone();
        move || opsd.last_rollout()
    })
    .await;
    let steps: Vec<(String, u64)> = rollout["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|decision| {
            (
                decision["kind"].as_str().unwrap().to_string(),
                decision["step_index"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("start".to_string(), 0),
            ("advance".to_string(), 1),
            ("advance".to_string(), 2),
            ("promote".to_string(), 2)
        ],
        "10 % → 25 % → 50 % → promoted: {rollout:#}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while fixture.invalidation_ids().await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the promotion created no CloudFront invalidation"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // A canary whose errors climb (version 3 at 20 %) is rolled back: the alias is back on
    // version 2 with an empty weight map.
    let bad = fixture.publish("v3-errors").await;
    error_rates.lock().unwrap().insert(bad.clone(), 0.2);
    let (code, out) = blocking({
        let opsd = opsd.clone();
        let bad = bad.clone();
        move || {
            opsd.cli(&[
                "deploy",
                "steno",
                "--version",
                &bad,
                "--wait",
                "--timeout",
                "120s",
            ])
        }
    })
    .await;
    assert_eq!(code, 2, "a version with 20 % errors is rolled back:\n{out}");
    fixture.expect_alias("2", HashMap::new()).await;

    // A CloudWatch alarm marked as a rollback trigger (the synced error-rate rule) in ALARM rolls
    // a healthy-looking canary back.
    let (code, out) = blocking({
        let dir = dir.path().to_path_buf();
        move || {
            let output = opsd_command(&dir)
                .args(["alarms", "sync"])
                .output()
                .unwrap();
            (
                output.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&output.stdout).into_owned()
                    + &String::from_utf8_lossy(&output.stderr),
            )
        }
    })
    .await;
    assert_eq!(code, 0, "{out}");
    let alarmed = fixture.publish("v4-alarmed").await;
    let deploy = deploy_and_wait_for_canary(&opsd, &fixture, &alarmed, "120s").await;
    fixture
        .cloudwatch
        .set_alarm_state()
        .alarm_name("opsd-steno-lambda-error-rate")
        .state_value(StateValue::Alarm)
        .state_reason("Threshold Crossed: 1 datapoint [0.05] was greater than the threshold (0.01)")
        .send()
        .await
        .expect("SetAlarmState");
    let (code, out) = deploy.await.unwrap();
    assert_eq!(
        code, 2,
        "a rollback alarm in ALARM rolls the canary back:\n{out}"
    );
    assert!(out.contains("opsd-steno-lambda-error-rate"), "{out}");
    fixture.expect_alias("2", HashMap::new()).await;
    fixture
        .cloudwatch
        .set_alarm_state()
        .alarm_name("opsd-steno-lambda-error-rate")
        .state_value(StateValue::Ok)
        .state_reason("reset by the test")
        .send()
        .await
        .expect("SetAlarmState");
    // opsd reuses what it read for `poll_interval` (1 s here): let that read expire, or the next
    // rollout would still see the alarm firing (as it should, while an alarm really fires).
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // A label that is not a version yet: opsd publishes the configured package as a new version
    // (described with the label), rolls it out and promotes it.
    let (code, out) = blocking({
        let opsd = opsd.clone();
        move || {
            opsd.cli(&[
                "deploy",
                "steno",
                "--version",
                "v6-packaged",
                "--wait",
                "--timeout",
                "120s",
            ])
        }
    })
    .await;
    assert_eq!(
        code, 0,
        "a packaged release is published and promoted:\n{out}"
    );
    let versions = fixture
        .lambda
        .list_versions_by_function()
        .function_name(FUNCTION)
        .send()
        .await
        .expect("ListVersionsByFunction");
    let published = versions
        .versions()
        .iter()
        .find(|version| version.description() == Some("opsd release v6-packaged"))
        .expect("opsd published the package as a version");
    let packaged = published.version().unwrap().to_string();
    fixture.expect_alias(&packaged, HashMap::new()).await;

    // Drift: someone shifts the alias by hand during a rollout; opsd reports it and does not
    // touch the alias while it differs from what opsd last set.
    let drifted = fixture.publish("v5-drift").await;
    let deploy = deploy_and_wait_for_canary(&opsd, &fixture, &drifted, "15s").await;
    let hand_weights = HashMap::from([(drifted.clone(), 0.5)]);
    fixture
        .lambda
        .update_alias()
        .function_name(FUNCTION)
        .name(ALIAS)
        .function_version(&packaged)
        .routing_config(
            aws_sdk_lambda::types::AliasRoutingConfiguration::builder()
                .set_additional_version_weights(Some(hand_weights.clone()))
                .build(),
        )
        .send()
        .await
        .expect("UpdateAlias by hand");
    let (code, out) = deploy.await.unwrap();
    assert_ne!(code, 0, "a drifted rollout is not promoted:\n{out}");
    assert_eq!(
        fixture.alias().await,
        (packaged.clone(), hand_weights),
        "opsd left the hand-made change alone"
    );
    let (code, out) = blocking({
        let opsd = opsd.clone();
        move || opsd.cli(&["history", "steno", "--json", "--limit", "1"])
    })
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("drift"),
        "the drift is on the timeline:\n{out}"
    );

    traffic.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_sync_is_idempotent_and_cdn_invalidations_complete() {
    binary("opsd");
    let fixture = Fixture::new().await;
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &fixture.emulator.endpoint_url(),
        &fixture.distribution_id,
    );
    let run = |args: &'static [&'static str]| {
        let dir = dir.path().to_path_buf();
        blocking(move || {
            let output = opsd_command(&dir).args(args).output().unwrap();
            (
                output.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        })
    };
    let describe = || async {
        let alarms = fixture
            .cloudwatch
            .describe_alarms()
            .alarm_name_prefix("opsd-steno-")
            .send()
            .await
            .expect("DescribeAlarms");
        alarms
            .metric_alarms()
            .iter()
            .map(|alarm| {
                (
                    alarm.alarm_name().unwrap().to_string(),
                    alarm.alarm_description().unwrap_or_default().to_string(),
                    alarm.threshold(),
                    alarm.evaluation_periods(),
                    alarm
                        .comparison_operator()
                        .map(|op| op.as_str().to_string()),
                    alarm.metrics().len(),
                    alarm.extended_statistic().map(str::to_string),
                )
            })
            .collect::<Vec<_>>()
    };

    let (code, out, err) = run(&["alarms", "sync", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let first: Value = serde_json::from_str(&out).unwrap();
    let created = first[0]["created"].as_array().unwrap().len();
    assert!(
        created >= 5,
        "the shipped rules with a CloudWatch metric are created (R-ALARM-11): {first:#}"
    );
    let after_first = describe().await;
    assert_eq!(after_first.len(), created);
    let error_rate = after_first
        .iter()
        .find(|alarm| alarm.0 == "opsd-steno-lambda-error-rate")
        .expect("the error-rate alarm");
    assert_eq!(error_rate.2, Some(0.01));
    assert_eq!(error_rate.5, 3, "error rate is metric math over two sums");
    let p99 = after_first
        .iter()
        .find(|alarm| alarm.0 == "opsd-steno-p99-latency")
        .expect("the p99 alarm");
    assert_eq!(p99.3, Some(5));
    assert_eq!(p99.6.as_deref(), Some("p99"));

    // Each alarm notifies its severity's topic, entering ALARM and returning to OK.
    let cloudwatch = &fixture.cloudwatch;
    let actions = |name: &'static str| async move {
        let alarms = cloudwatch
            .describe_alarms()
            .alarm_names(name)
            .send()
            .await
            .expect("DescribeAlarms");
        let alarm = &alarms.metric_alarms()[0];
        (alarm.alarm_actions().to_vec(), alarm.ok_actions().to_vec())
    };
    let pager = vec![PAGER_TOPIC.to_string()];
    let chat = vec![CHAT_TOPIC.to_string()];
    assert_eq!(
        actions("opsd-steno-lambda-error-rate").await,
        (pager.clone(), pager),
        "critical: the pager's topic"
    );
    assert_eq!(
        actions("opsd-steno-lambda-throttles").await,
        (chat.clone(), chat),
        "warning: the chat topic"
    );

    // A second sync changes nothing.
    let (code, out, err) = run(&["alarms", "sync", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let second: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(second[0]["created"], serde_json::json!([]));
    assert_eq!(second[0]["updated"], serde_json::json!([]));
    assert_eq!(second[0]["deleted"], serde_json::json!([]));
    assert_eq!(describe().await, after_first);

    // An owned alarm whose rule is gone is deleted; a threshold changed by hand is put back;
    // alarms opsd does not own are left alone.
    for (name, threshold) in [
        ("opsd-steno-retired-rule", 1.0),
        ("someone-elses-alarm", 2.0),
    ] {
        fixture
            .cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .namespace("Steno")
            .metric_name("Requests")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(threshold)
            .comparison_operator(
                aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold,
            )
            .send()
            .await
            .unwrap();
    }
    let (code, out, err) = run(&["alarms", "list"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("orphan"), "{out}");
    assert!(out.contains("health-check"), "{out}");
    assert!(out.contains("not synced"), "{out}");
    let (code, out, err) = run(&["alarms", "sync", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let third: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        third[0]["deleted"],
        serde_json::json!(["opsd-steno-retired-rule"])
    );
    assert_eq!(describe().await, after_first);
    let others = fixture
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix("someone-elses")
        .send()
        .await
        .unwrap();
    assert_eq!(others.metric_alarms().len(), 1);

    // An invalidation is created and followed to completion.
    let (code, out, err) = run(&["cdn", "invalidate", "steno", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["completed"], true, "{report:#}");
    assert!(err.contains("invalidation"), "a progress line: {err}");
    let id = report["invalidation_id"].as_str().unwrap().to_string();
    assert!(fixture.invalidation_ids().await.contains(&id));
    let status = fixture
        .cloudfront
        .get_invalidation()
        .distribution_id(&fixture.distribution_id)
        .id(&id)
        .send()
        .await
        .unwrap();
    assert!(
        status
            .invalidation()
            .unwrap()
            .status()
            .eq_ignore_ascii_case("completed"),
        "the emulator reports the invalidation completed"
    );
}
