//! The invariant "opsd's IAM policy grants exactly the operations its code calls", checked on the
//! source: every AWS SDK operation opsd sends outside tests (found in the files the crate compiles
//! outside tests, `sdk_calls`) becomes the IAM actions it needs, and those must be exactly the
//! actions of `infra/modules/opsd_iam/policy.tf`. A call that is not granted fails naming the
//! action and where it is called; a grant no call needs fails naming the action.

mod rust_items;
mod rust_tokens;
mod sdk_calls;

use std::collections::BTreeMap;
use std::path::PathBuf;

use sdk_calls::SdkCall;

/// How opsd's manifest names the AWS SDK's service crates; the crate `aws-sdk-lambda` is the
/// Rust crate whose name is this prefix with `_` for `-`, followed by `lambda`.
const SDK_DEPENDENCY_PREFIX: &str = "aws-sdk-";

/// The IAM service prefix of each SDK crate's service. A new SDK dependency needs a row.
const IAM_PREFIX: &[(&str, &str)] = &[
    ("cloudfront", "cloudfront"),
    ("cloudwatch", "cloudwatch"),
    ("costexplorer", "ce"),
    ("lambda", "lambda"),
    ("rds", "rds"),
    ("s3", "s3"),
    ("sns", "sns"),
];

/// An operation whose IAM action is not `<prefix>:<OperationName>`, as the AWS Service
/// Authorization Reference documents it. With `when_called` set, the row applies only when the
/// request calls that builder method (a row with it is tried before one without).
struct Exception {
    service: &'static str,
    operation: &'static str,
    when_called: Option<&'static str>,
    actions: &'static [&'static str],
}

const EXCEPTIONS: &[Exception] = &[
    // Reading or deleting one version of an object is its own action.
    Exception {
        service: "s3",
        operation: "get_object",
        when_called: Some("version_id"),
        actions: &["s3:GetObjectVersion"],
    },
    Exception {
        service: "s3",
        operation: "delete_object",
        when_called: Some("version_id"),
        actions: &["s3:DeleteObjectVersion"],
    },
    // Listing a bucket's objects is authorised as s3:ListBucket (its versions as
    // s3:ListBucketVersions); HeadObject as s3:GetObject.
    Exception {
        service: "s3",
        operation: "list_objects_v2",
        when_called: None,
        actions: &["s3:ListBucket"],
    },
    Exception {
        service: "s3",
        operation: "list_objects",
        when_called: None,
        actions: &["s3:ListBucket"],
    },
    Exception {
        service: "s3",
        operation: "list_object_versions",
        when_called: None,
        actions: &["s3:ListBucketVersions"],
    },
    Exception {
        service: "s3",
        operation: "head_object",
        when_called: None,
        actions: &["s3:GetObject"],
    },
    // CopyObject reads the source and writes the copy; there is no s3:CopyObject action.
    Exception {
        service: "s3",
        operation: "copy_object",
        when_called: None,
        actions: &["s3:GetObject", "s3:PutObject"],
    },
];

/// An action a call needs besides its own, because of how it is called or of what the platform
/// in infra/ does (every call listed here is made by opsd; the reason says why it needs more).
/// With `when_called` non-empty, only a request calling one of those builder methods needs it.
struct Implied {
    service: &'static str,
    operation: &'static str,
    when_called: &'static [&'static str],
    action: &'static str,
    reason: &'static str,
}

/// Not listed because opsd does not need them: `iam:PassRole` (RestoreDBInstanceFromDBSnapshot
/// needs it only to pass a role, and opsd passes none), `rds:CreateDBSnapshot` for
/// DeleteDBInstance (only for a final snapshot, which opsd skips), `kms:*` for Lambda (the
/// function's environment uses Lambda's own key, infra/modules/function).
const IMPLIED: &[Implied] = &[
    Implied {
        service: "rds",
        operation: "create_db_snapshot",
        when_called: &["tags", "set_tags"],
        action: "rds:AddTagsToResource",
        reason: "tags passed when creating a resource are added with AddTagsToResource",
    },
    Implied {
        service: "rds",
        operation: "restore_db_instance_from_db_snapshot",
        when_called: &["tags", "set_tags"],
        action: "rds:AddTagsToResource",
        reason: "tags passed when creating a resource are added with AddTagsToResource",
    },
    Implied {
        service: "rds",
        operation: "restore_db_instance_from_db_snapshot",
        when_called: &[],
        action: "kms:CreateGrant",
        reason:
            "snapshots are encrypted with the environment's KMS key (infra/modules/encryption); \
                 RDS creates the new instance's grant on the caller's behalf",
    },
    Implied {
        service: "rds",
        operation: "restore_db_instance_from_db_snapshot",
        when_called: &[],
        action: "kms:DescribeKey",
        reason: "RDS reads the snapshot's KMS key on the caller's behalf",
    },
    Implied {
        service: "s3",
        operation: "get_object",
        when_called: &[],
        action: "kms:Decrypt",
        reason: "documents are encrypted with the environment's KMS key (SSE-KMS)",
    },
    Implied {
        service: "s3",
        operation: "copy_object",
        when_called: &[],
        action: "kms:Decrypt",
        reason: "the source document is encrypted with the environment's KMS key",
    },
    Implied {
        service: "s3",
        operation: "copy_object",
        when_called: &[],
        action: "kms:GenerateDataKey",
        reason: "the copy is encrypted with the bucket's KMS key",
    },
    Implied {
        service: "sns",
        operation: "publish",
        when_called: &[],
        action: "kms:GenerateDataKey",
        reason:
            "the topics are encrypted with the environment's KMS key; publishing needs a data key",
    },
    Implied {
        service: "sns",
        operation: "publish",
        when_called: &[],
        action: "kms:Decrypt",
        reason: "publishing to a topic encrypted with a customer key needs kms:Decrypt too",
    },
];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn policy_file() -> PathBuf {
    manifest_dir().join("../infra/modules/opsd_iam/policy.tf")
}

/// The services of the SDK crates opsd depends on, from its manifest.
fn sdk_services(manifest: &str) -> Vec<String> {
    manifest
        .lines()
        .filter_map(|line| line.trim().strip_prefix(SDK_DEPENDENCY_PREFIX))
        .filter_map(|rest| rest.split(['.', '=', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// `get_alias` → `GetAlias`, `create_db_snapshot` → `CreateDbSnapshot` (IAM compares actions
/// without regard to case, so this matches `CreateDBSnapshot`).
fn pascal_case(operation: &str) -> String {
    operation
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// One action the code needs, with every place that needs it and why.
#[derive(Debug, Default)]
struct Needed {
    spelled: String,
    because: Vec<String>,
}

/// The IAM actions `calls` need, by lower-cased action.
fn needed_actions(calls: &[SdkCall]) -> Result<BTreeMap<String, Needed>, String> {
    let mut needed: BTreeMap<String, Needed> = BTreeMap::new();
    let mut add = |action: String, because: String| {
        let entry = needed.entry(action.to_ascii_lowercase()).or_default();
        if entry.spelled.is_empty() {
            entry.spelled = action;
        }
        entry.because.push(because);
    };
    for call in calls {
        let Some((_, prefix)) = IAM_PREFIX.iter().find(|(s, _)| *s == call.service) else {
            return Err(format!(
                "{}: the SDK service {:?} has no IAM prefix; add it to IAM_PREFIX in \
                 opsd/src/iam_policy_tests.rs",
                call.at, call.service
            ));
        };
        let called = |method: &str| call.builder_methods.contains(method);
        let exception = EXCEPTIONS
            .iter()
            .filter(|e| e.service == call.service && e.operation == call.operation)
            .filter(|e| e.when_called.is_none_or(called))
            .min_by_key(|e| e.when_called.is_none());
        let actions: Vec<String> = match exception {
            Some(exception) => exception.actions.iter().map(|a| a.to_string()).collect(),
            None => vec![format!("{prefix}:{}", pascal_case(&call.operation))],
        };
        for action in actions {
            add(action, format!("{} ({})", call.at, call.operation));
        }
        for implied in IMPLIED.iter().filter(|i| {
            i.service == call.service
                && i.operation == call.operation
                && (i.when_called.is_empty() || i.when_called.iter().any(|m| called(m)))
        }) {
            add(
                implied.action.to_string(),
                format!("{} ({}: {})", call.at, call.operation, implied.reason),
            );
        }
    }
    Ok(needed)
}

/// The `"service:Action"` strings of every `actions = [...]` list in an HCL file, with their
/// lines; `#` and `//` comments are ignored. A `not_actions` list or a wildcard is an error.
fn granted_actions(hcl: &str) -> Result<Vec<(String, usize)>, String> {
    let mut granted = Vec::new();
    let mut in_list = false;
    for (index, raw_line) in hcl.lines().enumerate() {
        let line = strip_hcl_comment(raw_line);
        let mut rest = line.trim();
        if !in_list {
            let Some(after) = rest.strip_prefix("actions") else {
                if rest.starts_with("not_actions") {
                    return Err(format!("line {}: not_actions grants too much", index + 1));
                }
                continue;
            };
            let Some(list) = after.trim_start().strip_prefix('=') else {
                continue;
            };
            let Some(list) = list.trim_start().strip_prefix('[') else {
                return Err(format!(
                    "line {}: keep `actions` a literal list of \"service:Action\" strings",
                    index + 1
                ));
            };
            rest = list;
        }
        let (items, closed) = match rest.split_once(']') {
            Some((items, _)) => (items, true),
            None => (rest, false),
        };
        for item in items.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let action = item.trim_matches('"');
            let well_formed = item.starts_with('"')
                && item.ends_with('"')
                && action.split_once(':').is_some_and(|(service, name)| {
                    !service.is_empty()
                        && !name.is_empty()
                        && action
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '-')
                });
            if !well_formed {
                return Err(format!(
                    "line {}: {item} is not a literal \"service:Action\" (no wildcards, no \
                     expressions)",
                    index + 1
                ));
            }
            granted.push((action.to_string(), index + 1));
        }
        in_list = !closed;
    }
    Ok(granted)
}

/// The line without a `#` or `//` comment (outside strings).
fn strip_hcl_comment(line: &str) -> &str {
    let mut in_string = false;
    let bytes = line.as_bytes();
    for (index, &byte) in bytes.iter().enumerate() {
        match byte {
            b'"' if index == 0 || bytes[index - 1] != b'\\' => in_string = !in_string,
            b'#' if !in_string => return &line[..index],
            b'/' if !in_string && bytes.get(index + 1) == Some(&b'/') => return &line[..index],
            _ => {}
        }
    }
    line
}

/// Each needed action that is not granted and each granted one that is not needed, in words.
fn differences(
    needed: &BTreeMap<String, Needed>,
    granted: &[(String, usize)],
    policy: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, need) in needed {
        if !granted
            .iter()
            .any(|(action, _)| action.to_ascii_lowercase() == *key)
        {
            problems.push(format!(
                "missing: {} is called but {policy} does not grant it; called at {}",
                need.spelled,
                need.because.join("; ")
            ));
        }
    }
    for (action, line) in granted {
        if !needed.contains_key(&action.to_ascii_lowercase()) {
            problems.push(format!(
                "extra: {action} is granted ({policy}:{line}) but opsd never calls it; remove it \
                 or, if a call needs it implicitly, add it to IMPLIED with the reason"
            ));
        }
    }
    problems
}

/// Every SDK call in the source opsd compiles outside tests.
fn opsd_sdk_calls() -> Vec<SdkCall> {
    let source_dir = manifest_dir().join("src");
    let sdk_prefix = SDK_DEPENDENCY_PREFIX.replace('-', "_");
    let roots = [source_dir.join("lib.rs"), source_dir.join("main.rs")];
    let mut calls = Vec::new();
    let mut problems = Vec::new();
    for (file, tokens) in rust_items::compiled_sources(&roots) {
        let label = file
            .strip_prefix(&source_dir)
            .unwrap_or(&file)
            .display()
            .to_string();
        if label.ends_with("_tests.rs") {
            continue;
        }
        match sdk_calls::sdk_calls(&label, &tokens, &sdk_prefix) {
            Ok(found) => calls.extend(found),
            Err(found) => problems.extend(found),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    calls
}

#[test]
fn opsd_iam_policy_grants_exactly_the_operations_its_code_calls() {
    let calls = opsd_sdk_calls();
    assert!(
        calls.len() >= 10,
        "only {} AWS SDK calls found in opsd's source; the derivation is broken",
        calls.len()
    );
    let needed = needed_actions(&calls).unwrap();
    let policy = policy_file();
    let text = std::fs::read_to_string(&policy).unwrap();
    let granted = granted_actions(&text).unwrap();
    println!("actions opsd's code needs (as the policy spells them):");
    for (key, need) in &needed {
        let spelled = granted
            .iter()
            .find(|(action, _)| action.to_ascii_lowercase() == *key)
            .map_or(&need.spelled, |(action, _)| action);
        println!("  {spelled}  <- {}", need.because.join("; "));
    }
    let problems = differences(&needed, &granted, "infra/modules/opsd_iam/policy.tf");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_sdk_crate_opsd_depends_on_has_an_iam_prefix() {
    let manifest = std::fs::read_to_string(manifest_dir().join("Cargo.toml")).unwrap();
    let services = sdk_services(&manifest);
    assert!(services.len() >= 7, "{services:?}");
    for service in services {
        assert!(
            IAM_PREFIX.iter().any(|(s, _)| *s == service),
            "the SDK crate for {service} has no IAM prefix in IAM_PREFIX"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn call(service: &str, operation: &str, methods: &[&str]) -> SdkCall {
        SdkCall {
            at: format!("x.rs:{}", operation.len()),
            service: service.into(),
            operation: operation.into(),
            builder_methods: methods.iter().map(|m| m.to_string()).collect(),
        }
    }

    fn spelled(calls: &[SdkCall]) -> BTreeSet<String> {
        needed_actions(calls)
            .unwrap()
            .into_values()
            .map(|n| n.spelled)
            .collect()
    }

    #[test]
    fn operations_become_actions_with_the_documented_exceptions() {
        let calls = [
            call("costexplorer", "get_cost_and_usage", &[]),
            call("s3", "list_objects_v2", &["bucket", "prefix"]),
            call("s3", "copy_object", &[]),
            call("s3", "get_object", &["bucket", "version_id"]),
            call("rds", "create_db_snapshot", &["tags"]),
        ];
        let expected: BTreeSet<String> = [
            "ce:GetCostAndUsage",
            "s3:ListBucket",
            "s3:GetObject",
            "s3:PutObject",
            "s3:GetObjectVersion",
            "kms:Decrypt",
            "kms:GenerateDataKey",
            "rds:CreateDbSnapshot",
            "rds:AddTagsToResource",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        assert_eq!(spelled(&calls), expected);
    }

    #[test]
    fn an_implied_action_tied_to_a_builder_method_needs_that_method() {
        let actions = spelled(&[call(
            "rds",
            "create_db_snapshot",
            &["db_instance_identifier"],
        )]);
        assert!(!actions.contains("rds:AddTagsToResource"), "{actions:?}");
    }

    #[test]
    fn policy_actions_are_read_from_actions_lists_only() {
        let hcl = r#"
          statement {
            sid = "A" # not an action: "x:Y"
            actions = ["lambda:GetAlias", "lambda:UpdateAlias"]
            resources = ["arn:aws:lambda:*:*:function:x"]
          }
          statement {
            actions = [
              "s3:GetObject", // read documents
              "kms:Decrypt",
            ]
          }
        "#;
        let granted: Vec<(String, usize)> = granted_actions(hcl).unwrap();
        assert_eq!(
            granted,
            vec![
                ("lambda:GetAlias".to_string(), 4),
                ("lambda:UpdateAlias".to_string(), 4),
                ("s3:GetObject".to_string(), 9),
                ("kms:Decrypt".to_string(), 10),
            ]
        );
        assert!(granted_actions("actions = [\"s3:*\"]").is_err());
        assert!(granted_actions("actions = local.all").is_err());
        assert!(granted_actions("not_actions = [\"s3:GetObject\"]").is_err());
    }

    #[test]
    fn differences_name_missing_calls_where_they_are_made_and_extra_grants() {
        let needed = needed_actions(&[call("lambda", "get_alias", &[])]).unwrap();
        let granted = vec![("lambda:PublishVersion".to_string(), 7)];
        let problems = differences(&needed, &granted, "policy.tf");
        assert_eq!(
            problems,
            vec![
                "missing: lambda:GetAlias is called but policy.tf does not grant it; called at \
                 x.rs:9 (get_alias)"
                    .to_string(),
                "extra: lambda:PublishVersion is granted (policy.tf:7) but opsd never calls it; \
                 remove it or, if a call needs it implicitly, add it to IMPLIED with the reason"
                    .to_string(),
            ]
        );
        let granted_other_case = vec![("LAMBDA:getalias".to_string(), 1)];
        assert!(differences(&needed, &granted_other_case, "p").is_empty());
    }

    #[test]
    fn sdk_services_are_read_from_the_manifest() {
        let manifest = "[dependencies]\naws-config.workspace = true\naws-sdk-lambda.workspace = true\naws-sdk-s3 = \"1\"\n";
        assert_eq!(sdk_services(manifest), vec!["lambda", "s3"]);
    }

    #[test]
    fn pascal_case_joins_words() {
        assert_eq!(pascal_case("list_objects_v2"), "ListObjectsV2");
        assert_eq!(
            pascal_case("restore_db_instance_from_db_snapshot"),
            "RestoreDbInstanceFromDbSnapshot"
        );
    }
}
