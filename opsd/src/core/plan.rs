//! Rollout plans: the steps of canary weight and bake time a rollout walks through, the presets
//! named as AWS CodeDeploy names them, and custom plans read from YAML.
//!
//! A custom plan file looks like this (durations as
//! [`parse_duration`](super::duration::parse_duration) reads them):
//!
//! ```yaml
//! name: fast-demo
//! steps:
//!   - weight: 10
//!     bake: 20s
//!   - weight: 50
//!     bake: 30s
//!     checks: [smoke]
//!   - weight: 100
//! watch: 15m            # after reaching 100 %: the watch before promotion (0 promotes at once)
//! contract_migrations: after_watch   # optional: a release's new contract migrations run after
//!                                    # the promotion (default: such a release is refused)
//! ```
//!
//! The 100 % step's bake is the **watch**: the new release takes all traffic while the previous
//! one stays warm, and the rollout is promoted only when the watch ends clean. `watch:` and the
//! last step's `bake:` are two spellings of the same thing; a plan gives it at most once.
//!
//! invariant: a [`RolloutPlan`] returned by this module has weights in 1..=100, strictly
//! increasing, and ends with the 100 % step (the promotion).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use super::approval::{ApprovalRule, RawApprovalRule};
use super::config_error::{locate_list_field, top_level_key_location, ConfigError};
use super::duration::{format_duration, ConfigDuration};
use super::schema::ContractMigrations;

/// One step: the canary takes `canary_weight_percent` of traffic for `bake`, and the smoke checks
/// named in `checks` run when the step begins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanStep {
    pub canary_weight_percent: u8,
    pub bake: Duration,
    /// Names of smoke checks (defined in the configuration) to run when the step begins.
    pub checks: Vec<String>,
    /// People who must approve before this step takes traffic (R-GATE-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRule>,
}

/// The steps of a rollout, ending with the 100 % promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutPlan {
    pub name: String,
    pub steps: Vec<PlanStep>,
    /// Whether a release's new contract migrations may run, after the promotion (see
    /// `core::schema`).
    #[serde(default)]
    pub contract_migrations: ContractMigrations,
}

impl RolloutPlan {
    /// Steps the analysis judges: the ones that run the canary beside the baseline (below 100 %),
    /// plus the watch at 100 %, which compares the new release with the previous one's recorded
    /// behaviour. The false-positive budget is split between them.
    pub fn compared_steps(&self) -> usize {
        self.steps
            .iter()
            .filter(|step| step.canary_weight_percent < 100 || !step.bake.is_zero())
            .count()
    }

    /// How long the new release is watched at 100 % before promotion (zero: promoted at once).
    pub fn watch(&self) -> Duration {
        self.steps
            .last()
            .filter(|step| step.canary_weight_percent == 100)
            .map(|step| step.bake)
            .unwrap_or_default()
    }

    /// The same plan with another watch (e.g. none for an operator's rollback).
    pub fn with_watch(mut self, watch: Duration) -> RolloutPlan {
        if let Some(last) = self
            .steps
            .last_mut()
            .filter(|step| step.canary_weight_percent == 100)
        {
            last.bake = watch;
        }
        self
    }

    /// The sum of the bake times of the steps below 100 %: the shortest time the plan can take.
    pub fn total_bake(&self) -> Duration {
        self.steps
            .iter()
            .filter(|step| step.canary_weight_percent < 100)
            .map(|step| step.bake)
            .sum()
    }

    /// Checks the plan's invariants; the message says which step breaks which rule.
    pub fn validate(&self) -> Result<(), PlanRuleViolation> {
        validate_steps(self.steps.iter().map(|step| {
            (
                step.canary_weight_percent,
                Some(step.bake),
                step.checks.as_slice(),
            )
        }))
    }

    /// A one-line description, like `10 % for 5m → 100 %`.
    pub fn describe(&self) -> String {
        let steps = self
            .steps
            .iter()
            .map(|step| {
                let mut text = format!("{} %", step.canary_weight_percent);
                if step.canary_weight_percent < 100 {
                    text.push_str(&format!(" for {}", format_duration(step.bake)));
                } else if !step.bake.is_zero() {
                    text.push_str(&format!(" watched for {}", format_duration(step.bake)));
                }
                if !step.checks.is_empty() {
                    text.push_str(&format!(" (checks: {})", step.checks.join(", ")));
                }
                if let Some(approval) = &step.approval {
                    text = format!("{} then {text}", approval.describe());
                }
                text
            })
            .collect::<Vec<_>>()
            .join(" → ");
        match self.contract_migrations {
            ContractMigrations::Refuse => steps,
            ContractMigrations::AfterWatch => {
                format!("{steps} → contract migrations after the promotion")
            }
        }
    }
}

/// The presets, as AWS CodeDeploy names them (R-CANARY-5 in docs/requirements.md), plus
/// `SeedCanary` (the default plan, R-CANARY-1 and R-CANARY-2).
const PRESET_NAMES: [&str; 10] = [
    "Canary10Percent5Minutes",
    "Canary10Percent10Minutes",
    "Canary10Percent15Minutes",
    "Canary10Percent30Minutes",
    "Linear10PercentEvery1Minute",
    "Linear10PercentEvery2Minutes",
    "Linear10PercentEvery3Minutes",
    "Linear10PercentEvery10Minutes",
    "AllAtOnce",
    "SeedCanary",
];

/// The names [`preset`] knows, in their canonical spelling.
pub fn preset_names() -> &'static [&'static str] {
    &PRESET_NAMES
}

/// A preset plan by name, ignoring case; `None` for an unknown name (see [`find_preset`]).
///
/// Each ends with a watch at 100 % (R-WATCH-1), the seeds' "monitor after deployment" times:
///
/// - `Canary10PercentNMinutes`: 10 % for N minutes, then 100 % watched for 15 minutes.
/// - `Linear10PercentEveryNMinutes`: 10, 20, …, 90 % each for N minutes, then 100 % watched for
///   15 minutes.
/// - `AllAtOnce`: 100 % immediately, watched for 1 hour.
/// - `SeedCanary`: 10 % for 5 minutes → 25 % for 10 minutes with check `smoke` → 50 % for 15
///   minutes with check `e2e` → 100 % watched for 30 minutes with check `e2e` (R-CANARY-1 to
///   R-CANARY-4, R-WATCH-1).
pub fn preset(name: &str) -> Option<RolloutPlan> {
    let canonical = PRESET_NAMES
        .iter()
        .find(|candidate| candidate.eq_ignore_ascii_case(name.trim()))?;
    let minutes = |count: u64| Duration::from_secs(count * 60);
    let steps = match *canonical {
        "Canary10Percent5Minutes" => canary_steps(minutes(5)),
        "Canary10Percent10Minutes" => canary_steps(minutes(10)),
        "Canary10Percent15Minutes" => canary_steps(minutes(15)),
        "Canary10Percent30Minutes" => canary_steps(minutes(30)),
        "Linear10PercentEvery1Minute" => linear_steps(minutes(1)),
        "Linear10PercentEvery2Minutes" => linear_steps(minutes(2)),
        "Linear10PercentEvery3Minutes" => linear_steps(minutes(3)),
        "Linear10PercentEvery10Minutes" => linear_steps(minutes(10)),
        "AllAtOnce" => vec![step(100, ALL_AT_ONCE_WATCH, &[])],
        "SeedCanary" => vec![
            step(10, minutes(5), &[]),
            step(25, minutes(10), &["smoke"]),
            step(50, minutes(15), &["e2e"]),
            step(100, SEED_CANARY_WATCH, &["e2e"]),
        ],
        _ => return None,
    };
    Some(RolloutPlan {
        name: canonical.to_string(),
        steps,
        contract_migrations: ContractMigrations::Refuse,
    })
}

/// A preset that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("there is no rollout plan preset named {name:?}; the presets are {}", PRESET_NAMES.join(", "))]
pub struct UnknownPresetError {
    pub name: String,
}

/// A preset plan by name, ignoring case; the error lists the presets.
pub fn find_preset(name: &str) -> Result<RolloutPlan, UnknownPresetError> {
    preset(name).ok_or_else(|| UnknownPresetError {
        name: name.to_string(),
    })
}

fn step(weight: u8, bake: Duration, checks: &[&str]) -> PlanStep {
    PlanStep {
        canary_weight_percent: weight,
        bake,
        checks: checks.iter().map(|check| check.to_string()).collect(),
        approval: None,
    }
}

/// R-WATCH-1 (docs/requirements.md): the watch after a staged shift to 100 % (15 minutes after
/// 10 → 50 → 100 %).
pub const STAGED_WATCH: Duration = Duration::from_secs(15 * 60);
/// R-WATCH-1 (docs/requirements.md): the watch of the seed plan (alarms watched for 30 minutes
/// after the deployment).
pub const SEED_CANARY_WATCH: Duration = Duration::from_secs(30 * 60);
/// R-WATCH-1 (docs/requirements.md): the watch after an all-at-once deployment (1 hour).
pub const ALL_AT_ONCE_WATCH: Duration = Duration::from_secs(60 * 60);

fn canary_steps(bake: Duration) -> Vec<PlanStep> {
    vec![step(10, bake, &[]), step(100, STAGED_WATCH, &[])]
}

fn linear_steps(bake: Duration) -> Vec<PlanStep> {
    let mut steps: Vec<PlanStep> = (1..=9).map(|tenth| step(tenth * 10, bake, &[])).collect();
    steps.push(step(100, STAGED_WATCH, &[]));
    steps
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    name: String,
    steps: Vec<RawStep>,
    /// The 100 % step's bake, said at the plan's level.
    #[serde(default)]
    watch: Option<ConfigDuration>,
    #[serde(default)]
    contract_migrations: ContractMigrations,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    weight: StepWeight,
    #[serde(default)]
    bake: Option<ConfigDuration>,
    #[serde(default)]
    checks: Vec<String>,
    #[serde(default)]
    approve: Option<RawApprovalRule>,
}

/// A canary weight in 1..=100, rejected while deserializing so the error carries its line.
struct StepWeight(u8);

impl<'de> Deserialize<'de> for StepWeight {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_u64(StepWeightVisitor)
    }
}

struct StepWeightVisitor;

impl Visitor<'_> for StepWeightVisitor {
    type Value = StepWeight;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a canary weight in percent, 1 to 100")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<StepWeight, E> {
        match u8::try_from(value) {
            Ok(weight @ 1..=100) => Ok(StepWeight(weight)),
            _ => Err(E::custom(format!(
                "{value} is not a canary weight; use a percentage from 1 to 100"
            ))),
        }
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<StepWeight, E> {
        match u64::try_from(value) {
            Ok(value) => self.visit_u64(value),
            Err(_) => Err(E::custom(format!(
                "{value} is not a canary weight; use a percentage from 1 to 100"
            ))),
        }
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<StepWeight, E> {
        Err(E::custom(format!(
            "{value} is not a canary weight; use a whole percentage from 1 to 100"
        )))
    }
}

/// A broken plan rule: which step (0-based), which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PlanRuleViolation {
    /// `None` when the rule is about the plan as a whole (no steps at all).
    pub step_index: Option<usize>,
    pub field: &'static str,
    pub message: String,
}

fn validate_steps<'a>(
    steps: impl IntoIterator<Item = (u8, Option<Duration>, &'a [String])>,
) -> Result<(), PlanRuleViolation> {
    let violation = |step_index: Option<usize>, field: &'static str, message: String| {
        Err(PlanRuleViolation {
            step_index,
            field,
            message,
        })
    };
    let mut previous_weight: Option<u8> = None;
    let mut last: Option<(usize, u8)> = None;
    for (index, (weight, bake, checks)) in steps.into_iter().enumerate() {
        if !(1..=100).contains(&weight) {
            return violation(
                Some(index),
                "weight",
                format!("{weight} is not a canary weight; use a percentage from 1 to 100"),
            );
        }
        if let Some(previous) = previous_weight {
            if weight <= previous {
                return violation(
                    Some(index),
                    "weight",
                    format!(
                        "weights must increase from step to step, but {weight} % comes after {previous} %"
                    ),
                );
            }
        }
        if weight < 100 && bake.is_none() {
            return violation(
                Some(index),
                "bake",
                format!(
                    "the {weight} % step needs a bake time (how long to watch it), like `bake: 5m`"
                ),
            );
        }
        for (check_index, check) in checks.iter().enumerate() {
            if !is_plain_name(check) {
                return violation(
                    Some(index),
                    "checks",
                    format!("{check:?} is not a check name; use letters, digits, '-', '_' or '.'"),
                );
            }
            if checks[..check_index].contains(check) {
                return violation(
                    Some(index),
                    "checks",
                    format!("check {check:?} is listed twice"),
                );
            }
        }
        previous_weight = Some(weight);
        last = Some((index, weight));
    }
    match last {
        None => violation(
            None,
            "steps",
            "a plan needs at least one step; the last one must be `- weight: 100`".to_string(),
        ),
        Some((index, weight)) if weight != 100 => violation(
            Some(index),
            "weight",
            format!(
                "the last step must be 100 % (the promotion), not {weight} %; add `- weight: 100` at the end"
            ),
        ),
        Some(_) => Ok(()),
    }
}

/// Whether `name` is a non-empty identifier-like name (letters, digits, `-`, `_`, `.`).
pub(crate) fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Reads a custom plan from YAML text; `file_name` names the file in errors.
pub fn parse_plan(file_name: &str, text: &str) -> Result<RolloutPlan, ConfigError> {
    let raw: RawPlan = serde_yaml::from_str(text)
        .map_err(|error| ConfigError::from_yaml(file_name, text, &error))?;
    plan_from_raw(file_name, raw, Some(text))
}

/// Reads a plan document given inline (the JSON of an API request), checked like a plan file;
/// `source` names it in errors. Errors name fields, never echo values other than the ones at
/// fault.
pub fn plan_from_document(
    source: &str,
    document: serde_json::Value,
) -> Result<RolloutPlan, ConfigError> {
    if !document.is_object() {
        return Err(ConfigError::new(
            source,
            "a plan document is an object like {\"name\": \"fast\", \"steps\": [{\"weight\": 10, \"bake\": \"30s\"}, {\"weight\": 100}]}",
        ));
    }
    let raw: RawPlan = serde_json::from_value(document)
        .map_err(|error| ConfigError::new(source, error.to_string()))?;
    plan_from_raw(source, raw, None)
}

/// Checks a parsed plan; `text`, when the plan came from a file, places errors on its lines.
fn plan_from_raw(
    file_name: &str,
    raw: RawPlan,
    text: Option<&str>,
) -> Result<RolloutPlan, ConfigError> {
    let name = raw.name.trim().to_string();
    if !is_plain_name(&name) {
        return Err(ConfigError::new(
            file_name,
            format!(
                "{:?} is not a plan name; use 1 to 100 letters, digits, '-', '_' or '.'",
                shorten(&raw.name)
            ),
        )
        .with_field("name")
        .at(text.and_then(|text| top_level_key_location(text, "name"))));
    }

    validate_steps(raw.steps.iter().map(|step| {
        (
            step.weight.0,
            step.bake.map(|bake| bake.0),
            step.checks.as_slice(),
        )
    }))
    .map_err(|violation| {
        let (field, location) = match violation.step_index {
            Some(index) => (
                format!("steps[{index}].{}", violation.field),
                text.and_then(|text| {
                    locate_list_field(text, "steps", index, Some(violation.field))
                }),
            ),
            None => (
                "steps".to_string(),
                text.and_then(|text| top_level_key_location(text, "steps")),
            ),
        };
        ConfigError::new(file_name, violation.message)
            .with_field(field)
            .at(location)
    })?;

    let mut approvals = Vec::with_capacity(raw.steps.len());
    for (index, step) in raw.steps.iter().enumerate() {
        let Some(approve) = &step.approve else {
            approvals.push(None);
            continue;
        };
        let located = |field: &str, message: String| {
            ConfigError::new(file_name, message)
                .with_field(format!("steps[{index}].{field}"))
                .at(text.and_then(|text| locate_list_field(text, "steps", index, Some("approve"))))
        };
        if index == 0 {
            return Err(located(
                "approve",
                "the first step cannot wait for approval (the deploy itself is the go-ahead); put `approve` on a later step".to_string(),
            ));
        }
        let rule = approve
            .check()
            .map_err(|(field, message)| located(&format!("approve.{field}"), message))?;
        approvals.push(Some(rule));
    }
    let last_index = raw.steps.len() - 1;
    if raw.watch.is_some() && raw.steps[last_index].bake.is_some() {
        return Err(ConfigError::new(
            file_name,
            "the watch is the 100 % step's bake: give it once, either `watch:` or the last step's `bake:`",
        )
        .with_field("watch")
        .at(text.and_then(|text| top_level_key_location(text, "watch"))));
    }
    let watch = raw.watch.map(|watch| watch.0);
    Ok(RolloutPlan {
        name,
        contract_migrations: raw.contract_migrations,
        steps: raw
            .steps
            .into_iter()
            .zip(approvals)
            .enumerate()
            .map(|(index, (step, approval))| PlanStep {
                canary_weight_percent: step.weight.0,
                bake: step
                    .bake
                    .map(|bake| bake.0)
                    .or(if index == last_index { watch } else { None })
                    .unwrap_or_default(),
                checks: step.checks,
                approval,
            })
            .collect(),
    })
}

/// The plan as a plan document (the shape [`plan_from_document`] reads), for sending a plan
/// file's content through the API.
pub fn plan_document(plan: &RolloutPlan) -> serde_json::Value {
    let steps: Vec<serde_json::Value> = plan
        .steps
        .iter()
        .map(|step| {
            let mut document = serde_json::json!({"weight": step.canary_weight_percent});
            if step.canary_weight_percent < 100 || !step.bake.is_zero() {
                document["bake"] = format_duration(step.bake).into();
            }
            if !step.checks.is_empty() {
                document["checks"] = step.checks.clone().into();
            }
            if let Some(approval) = &step.approval {
                document["approve"] = approval.document();
            }
            document
        })
        .collect();
    let mut document = serde_json::json!({"name": plan.name, "steps": steps});
    if plan.contract_migrations == ContractMigrations::AfterWatch {
        document["contract_migrations"] = "after_watch".into();
    }
    document
}

/// At most 40 characters of a name, for an error message.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minutes(count: u64) -> Duration {
        Duration::from_secs(count * 60)
    }

    #[test]
    fn a_plan_document_round_trips_and_is_checked_like_a_file() {
        for name in preset_names() {
            let plan = preset(name).unwrap();
            let back = plan_from_document("doc", plan_document(&plan)).unwrap();
            assert_eq!(back, plan);
        }
        let odd = parse_plan(
            "odd.yaml",
            "name: odd\nsteps:\n  - {weight: 5, bake: 1m30s, checks: [smoke]}\n  - {weight: 20, bake: 500ms}\n  - {weight: 100, bake: 10s}\n",
        )
        .unwrap();
        assert_eq!(plan_from_document("doc", plan_document(&odd)).unwrap(), odd);

        let error = plan_from_document(
            "the request's plan",
            serde_json::json!({"name": "x", "steps": [{"weight": 50, "bake": "1m"}]}),
        )
        .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("steps[0].weight"));
        assert!(error.to_string().contains("the request's plan"), "{error}");
        let error = plan_from_document("doc", serde_json::json!("/etc/passwd")).unwrap_err();
        assert!(error.to_string().contains("a plan document is an object"));
        let error = plan_from_document(
            "doc",
            serde_json::json!({"name": "x", "steps": [], "extra": 1}),
        )
        .unwrap_err();
        assert!(error.to_string().contains("unknown field"), "{error}");
    }

    #[test]
    fn every_preset_is_valid_and_found_by_any_case() {
        assert_eq!(preset_names().len(), 10);
        for name in preset_names() {
            let plan = preset(name).unwrap();
            assert_eq!(plan.name, *name);
            plan.validate().unwrap();
            assert_eq!(preset(&name.to_lowercase()).unwrap(), plan);
            assert_eq!(preset(&name.to_uppercase()).unwrap(), plan);
        }
        assert!(preset("Canary10Percent7Minutes").is_none());
        let error = find_preset("canary").unwrap_err().to_string();
        assert!(error.contains("\"canary\""), "{error}");
        for name in preset_names() {
            assert!(error.contains(name), "{error}");
        }
    }

    #[test]
    fn presets_have_the_codedeploy_shapes() {
        let canary = preset("Canary10Percent15Minutes").unwrap();
        assert_eq!(
            canary.steps,
            vec![step(10, minutes(15), &[]), step(100, minutes(15), &[])]
        );
        for (name, bake) in [
            ("Canary10Percent5Minutes", 5),
            ("Canary10Percent10Minutes", 10),
            ("Canary10Percent30Minutes", 30),
        ] {
            let plan = preset(name).unwrap();
            assert_eq!(plan.steps.len(), 2);
            assert_eq!(plan.steps[0].bake, minutes(bake));
        }
        for (name, bake) in [
            ("Linear10PercentEvery1Minute", 1),
            ("Linear10PercentEvery2Minutes", 2),
            ("Linear10PercentEvery3Minutes", 3),
            ("Linear10PercentEvery10Minutes", 10),
        ] {
            let plan = preset(name).unwrap();
            let weights: Vec<u8> = plan.steps.iter().map(|s| s.canary_weight_percent).collect();
            assert_eq!(weights, vec![10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
            assert!(plan.steps[..9].iter().all(|s| s.bake == minutes(bake)));
            assert_eq!(plan.total_bake(), minutes(9 * bake));
            assert_eq!(plan.compared_steps(), 10);
            assert_eq!(plan.watch(), minutes(15));
        }
        let all = preset("allatonce").unwrap();
        assert_eq!(all.steps, vec![step(100, minutes(60), &[])]);
        assert_eq!(all.compared_steps(), 1);
        let unwatched = all.with_watch(Duration::ZERO);
        assert_eq!(unwatched.compared_steps(), 0);
        assert_eq!(unwatched.watch(), Duration::ZERO);
    }

    /// R-CANARY-1 (the steps), R-CANARY-2 (the bakes), R-CANARY-3 and R-CANARY-4 (the checks).
    #[test]
    fn the_seed_canary_has_the_required_steps() {
        let plan = preset("SeedCanary").unwrap();
        assert_eq!(
            plan.steps,
            vec![
                step(10, minutes(5), &[]),
                step(25, minutes(10), &["smoke"]),
                step(50, minutes(15), &["e2e"]),
                step(100, minutes(30), &["e2e"]),
            ]
        );
        assert_eq!(plan.compared_steps(), 4);
        assert_eq!(plan.watch(), minutes(30));
        assert_eq!(
            plan.describe(),
            "10 % for 5m → 25 % for 10m (checks: smoke) → 50 % for 15m (checks: e2e) → 100 % watched for 30m (checks: e2e)"
        );
    }

    /// R-GATE-8: a later step may wait for approval; the rule travels in plan documents.
    #[test]
    fn a_step_may_wait_for_approval() {
        let text = "name: gated\nsteps:\n  - {weight: 10, bake: 1m}\n  - weight: 100\n    approve: {approvers: 2, timeout: 30m, on_timeout: rollback}\n";
        let plan = parse_plan("gated.yaml", text).unwrap();
        let rule = plan.steps[1]
            .approval
            .clone()
            .expect("the 100 % step waits");
        assert_eq!(rule.approvers, 2);
        assert_eq!(
            plan.describe(),
            "10 % for 1m → approval by 2 people within 30m then 100 %"
        );
        assert_eq!(
            plan_from_document("request", plan_document(&plan)).unwrap(),
            plan
        );

        let first = parse_plan(
            "first.yaml",
            "name: f\nsteps:\n  - weight: 10\n    bake: 1m\n    approve: {approvers: 1}\n  - weight: 100\n",
        )
        .unwrap_err();
        assert_eq!(first.field.as_deref(), Some("steps[0].approve"));
        assert_eq!(first.line, Some(5), "{first}");
        let zero = parse_plan(
            "zero.yaml",
            "name: z\nsteps:\n  - {weight: 10, bake: 1m}\n  - weight: 100\n    approve: {approvers: 0}\n",
        )
        .unwrap_err();
        assert_eq!(zero.field.as_deref(), Some("steps[1].approve.approvers"));
        assert!(
            zero.to_string().contains("1 to 10 different people"),
            "{zero}"
        );
    }

    #[test]
    fn a_plan_may_run_contract_migrations_after_the_watch() {
        let plain = parse_plan("p.yaml", FAST_DEMO).unwrap();
        assert_eq!(plain.contract_migrations, ContractMigrations::Refuse);
        let contract = parse_plan(
            "c.yaml",
            &format!("{FAST_DEMO}contract_migrations: after_watch\n"),
        )
        .unwrap();
        assert_eq!(contract.contract_migrations, ContractMigrations::AfterWatch);
        assert!(contract
            .describe()
            .ends_with("contract migrations after the promotion"));
        let again = plan_from_document("doc", plan_document(&contract)).unwrap();
        assert_eq!(again, contract);
        let wrong = parse_plan("w.yaml", &format!("{FAST_DEMO}contract_migrations: now\n"))
            .unwrap_err()
            .to_string();
        assert!(wrong.contains("after_watch"), "{wrong}");
    }

    /// R-WATCH-1: `watch:` is the 100 % step's bake, said once; `watch: 0` means none.
    #[test]
    fn a_plan_says_its_watch_once() {
        let watched = parse_plan("w.yaml", &format!("{FAST_DEMO}watch: 10m\n")).unwrap();
        assert_eq!(watched.watch(), minutes(10));
        assert_eq!(watched.compared_steps(), 3);
        let as_bake = parse_plan(
            "b.yaml",
            "name: b\nsteps:\n  - {weight: 10, bake: 1m}\n  - {weight: 100, bake: 10m}\n",
        )
        .unwrap();
        assert_eq!(as_bake.watch(), minutes(10));
        let none = parse_plan("n.yaml", &format!("{FAST_DEMO}watch: 0\n")).unwrap();
        assert_eq!(none.watch(), Duration::ZERO);
        assert_eq!(none.compared_steps(), 2);

        let twice = parse_plan(
            "t.yaml",
            "name: t\nsteps:\n  - {weight: 10, bake: 1m}\n  - {weight: 100, bake: 10m}\nwatch: 5m\n",
        )
        .unwrap_err()
        .to_string();
        assert!(twice.contains("watch"), "{twice}");
        assert!(twice.contains("give it once"), "{twice}");
        let bad = parse_plan("x.yaml", &format!("{FAST_DEMO}watch: soon\n"))
            .unwrap_err()
            .to_string();
        assert!(bad.contains("x.yaml"), "{bad}");
        // The plan document sent through the API keeps the watch.
        let document = plan_document(&watched);
        assert_eq!(document["steps"][2]["bake"], "10m");
        assert_eq!(plan_from_document("request", document).unwrap(), watched);
    }

    const FAST_DEMO: &str = "name: fast-demo\nsteps:\n  - weight: 10\n    bake: 20s        # a comment\n  - weight: 50\n    bake: 30s\n    checks: [smoke]\n  - weight: 100\n";

    #[test]
    fn parses_a_custom_plan() {
        let plan = parse_plan("fast-demo.yaml", FAST_DEMO).unwrap();
        assert_eq!(plan.name, "fast-demo");
        assert_eq!(
            plan.steps,
            vec![
                step(10, Duration::from_secs(20), &[]),
                step(50, Duration::from_secs(30), &["smoke"]),
                step(100, Duration::ZERO, &[]),
            ]
        );
        let bare_seconds =
            "name: p\nsteps:\n  - {weight: 5, bake: 45}\n  - weight: 100\n    bake: 1m30s\n";
        let plan = parse_plan("p.yaml", bare_seconds).unwrap();
        assert_eq!(plan.steps[0].bake, Duration::from_secs(45));
        assert_eq!(plan.steps[1].bake, Duration::from_secs(90));
    }

    fn error_of(text: &str) -> ConfigError {
        parse_plan("plan.yaml", text).unwrap_err()
    }

    #[test]
    fn bad_plans_name_file_line_and_field() {
        let unknown = error_of(
            "name: p\nsteps:\n  - weight: 10\n    bake: 1m\n    wait: 5\n  - weight: 100\n",
        );
        assert_eq!(
            (unknown.line, unknown.field.as_deref()),
            (Some(5), Some("steps[0].wait"))
        );
        assert!(unknown.to_string().starts_with("plan.yaml:5:"), "{unknown}");

        let unknown_top = error_of("name: p\nowner: me\nsteps:\n  - weight: 100\n");
        assert_eq!(
            (unknown_top.line, unknown_top.field.as_deref()),
            (Some(2), Some("owner"))
        );

        let zero = error_of("name: p\nsteps:\n  - weight: 0\n    bake: 1m\n  - weight: 100\n");
        assert_eq!(
            (zero.line, zero.field.as_deref()),
            (Some(3), Some("steps[0].weight"))
        );
        assert!(zero.message.contains("1 to 100"), "{zero}");

        let too_big = error_of("name: p\nsteps:\n  - weight: 10\n    bake: 1m\n  - weight: 150\n");
        assert_eq!(
            (too_big.line, too_big.field.as_deref()),
            (Some(5), Some("steps[1].weight"))
        );

        let wrong_type = error_of("name: p\nsteps:\n  - weight: ten\n  - weight: 100\n");
        assert_eq!(
            (wrong_type.line, wrong_type.field.as_deref()),
            (Some(3), Some("steps[0].weight"))
        );

        let decreasing = error_of(
            "name: p\nsteps:\n  - weight: 25\n    bake: 1m\n  - weight: 10\n    bake: 1m\n  - weight: 100\n",
        );
        assert_eq!((decreasing.line, decreasing.column), (Some(5), Some(5)));
        assert_eq!(decreasing.field.as_deref(), Some("steps[1].weight"));
        assert!(
            decreasing.message.contains("10 % comes after 25 %"),
            "{decreasing}"
        );

        let no_promotion = error_of(
            "name: p\nsteps:\n  - weight: 10\n    bake: 1m\n  - weight: 50\n    bake: 1m\n",
        );
        assert_eq!(
            (no_promotion.line, no_promotion.field.as_deref()),
            (Some(5), Some("steps[1].weight"))
        );
        assert!(
            no_promotion.message.contains("last step must be 100"),
            "{no_promotion}"
        );

        let parsecs =
            error_of("name: p\nsteps:\n  - weight: 10\n    bake: 5 parsecs\n  - weight: 100\n");
        assert_eq!(
            (parsecs.line, parsecs.field.as_deref()),
            (Some(4), Some("steps[0].bake"))
        );
        assert!(parsecs.message.contains("5 parsecs"), "{parsecs}");

        let no_bake = error_of("name: p\nsteps:\n  - weight: 10\n  - weight: 100\n");
        assert_eq!(
            (no_bake.line, no_bake.field.as_deref()),
            (Some(3), Some("steps[0].bake"))
        );

        let no_steps = error_of("name: p\nsteps: []\n");
        assert_eq!(
            (no_steps.line, no_steps.field.as_deref()),
            (Some(2), Some("steps"))
        );

        let missing_steps = error_of("name: p\n");
        assert_eq!(missing_steps.field.as_deref(), Some("steps"));
        assert!(
            missing_steps.message.contains("missing field"),
            "{missing_steps}"
        );

        let bad_name = error_of("name: \"two words\"\nsteps:\n  - weight: 100\n");
        assert_eq!(
            (bad_name.line, bad_name.field.as_deref()),
            (Some(1), Some("name"))
        );

        let twice = error_of("name: p\nsteps:\n  - weight: 10\n    bake: 1m\n    checks: [smoke, smoke]\n  - weight: 100\n");
        assert_eq!(
            (twice.line, twice.field.as_deref()),
            (Some(5), Some("steps[0].checks"))
        );

        let not_yaml = error_of("name: p\nsteps:\n  - weight: 10\n   bake: 1m\n");
        assert!(not_yaml.line.is_some(), "{not_yaml}");
    }
}
