//! The AWS SDK calls in a Rust file's test-free tokens: every fluent chain ending in `.send()`
//! (`self.client.get_alias().function_name(..).name(..).send()`, or a request bound to a variable
//! first and sent later), its operation, the builder methods called on it, and the service of the
//! client it starts from, read from how that client is declared in the same file.

use std::collections::{BTreeMap, BTreeSet};

use super::rust_items::after_matching;
use super::rust_tokens::{Kind, Token};

/// One SDK operation the code sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SdkCall {
    /// Where `.send()` is, as `file:line`.
    pub(super) at: String,
    /// The SDK crate's service (`lambda`, `costexplorer`, ...).
    pub(super) service: String,
    /// The fluent builder's method, like `get_alias`.
    pub(super) operation: String,
    /// The other methods called on the request, like `function_name` or `tags`.
    pub(super) builder_methods: BTreeSet<String>,
}

/// One link of a method chain.
#[derive(Debug, Clone)]
struct Link {
    name: String,
    is_call: bool,
}

/// Calls that hand back the same client, skipped when looking for the operation.
const PASS_THROUGH: &[&str] = &["clone", "as_ref", "borrow"];

/// The links of the chain that ends just before `end` (the `.` of `.send`), back to its head.
/// A head reached through `a::b::c(...)` is returned as a path.
fn chain_before(tokens: &[Token], end: usize) -> (Vec<Link>, Vec<String>) {
    let mut links = Vec::new();
    let mut head_path = Vec::new();
    let mut at = end;
    while let Some(previous) = at.checked_sub(1) {
        let token = &tokens[previous];
        if token.is(")") {
            let Some(open) = matching_open(tokens, previous) else {
                break;
            };
            let Some(name_at) = open.checked_sub(1).filter(|&i| tokens[i].is_ident()) else {
                break;
            };
            links.push(Link {
                name: tokens[name_at].text.clone(),
                is_call: true,
            });
            at = name_at;
        } else if token.is_ident() {
            links.push(Link {
                name: token.text.clone(),
                is_call: false,
            });
            at = previous;
        } else {
            break;
        }
        if at > 0 && tokens[at - 1].is(".") {
            at -= 1;
        } else {
            // A head like `aws_sdk_x::Client::new(..)`: keep its path.
            let mut index = at;
            while index >= 2 && tokens[index - 1].is("::") && tokens[index - 2].is_ident() {
                head_path.insert(0, tokens[index - 2].text.clone());
                index -= 2;
            }
            break;
        }
    }
    links.reverse();
    (links, head_path)
}

/// The `(` matching the `)` at `close`.
fn matching_open(tokens: &[Token], close: usize) -> Option<usize> {
    let mut depth = 0usize;
    for index in (0..=close).rev() {
        let token = &tokens[index];
        if token.kind != Kind::Punct {
            continue;
        }
        match token.text.as_str() {
            ")" | "]" | "}" => depth += 1,
            "(" | "[" | "{" => {
                depth -= 1;
                if depth == 0 {
                    return Some(index);
                }
            }
            _ => {}
        }
    }
    None
}

/// The links of the chain starting at `start` (an identifier), read forwards.
fn chain_after(tokens: &[Token], start: usize) -> Vec<Link> {
    let mut links = Vec::new();
    let mut at = start;
    while tokens.get(at).is_some_and(Token::is_ident) {
        let name = tokens[at].text.clone();
        at += 1;
        let is_call = tokens.get(at).is_some_and(|t| t.is("("));
        if is_call {
            at = after_matching(tokens, at);
        }
        links.push(Link { name, is_call });
        if tokens.get(at).is_some_and(|t| t.is(".")) {
            at += 1;
        } else {
            break;
        }
    }
    links
}

/// A request: the client's path (`self.client` → [self, client]), the operation and the other
/// methods called in the chain.
struct Request {
    receiver: Vec<String>,
    operation: String,
    builder_methods: BTreeSet<String>,
}

fn request_of(links: &[Link]) -> Option<Request> {
    let first_call = links
        .iter()
        .position(|link| link.is_call && !PASS_THROUGH.contains(&link.name.as_str()))?;
    Some(Request {
        receiver: links[..first_call]
            .iter()
            .filter(|link| !link.is_call)
            .map(|link| link.name.clone())
            .collect(),
        operation: links[first_call].name.clone(),
        builder_methods: links[first_call + 1..]
            .iter()
            .filter(|link| link.is_call)
            .map(|link| link.name.clone())
            .collect(),
    })
}

/// For a request bound to `variable` before `before` (`let mut request = client.op()...;` then
/// `request = request.more(..)` or `request.more(..)`): the request with every method called on
/// the variable in between.
fn bound_request(tokens: &[Token], variable: &str, before: usize) -> Option<Request> {
    let binding = (0..before).rev().find(|&i| {
        tokens[i].is(variable)
            && tokens.get(i + 1).is_some_and(|t| t.is("="))
            && (i >= 1 && tokens[i - 1].is("let")
                || i >= 2 && tokens[i - 1].is("mut") && tokens[i - 2].is("let"))
    })?;
    let mut request = request_of(&chain_after(tokens, binding + 2))?;
    for index in binding + 2..before {
        if tokens[index].is(variable) && tokens.get(index + 1).is_some_and(|t| t.is(".")) {
            let links = chain_after(tokens, index);
            request.builder_methods.extend(
                links
                    .iter()
                    .filter(|l| l.is_call && l.name != "send")
                    .map(|l| l.name.clone()),
            );
        }
    }
    Some(request)
}

/// What a declaration says a name holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Holds {
    SdkClient(String),
    Other,
}

/// The service of an SDK crate named `<prefix><service>`.
fn sdk_service(name: &str, sdk_prefix: &str) -> Option<String> {
    name.strip_prefix(sdk_prefix).map(str::to_string)
}

/// The local names `use` statements give to SDK clients (`use sdk_x::Client as X;` → X → x).
fn imported_clients(tokens: &[Token], sdk_prefix: &str) -> BTreeMap<String, String> {
    let mut imported = BTreeMap::new();
    for (index, token) in tokens.iter().enumerate() {
        if !token.is("use") {
            continue;
        }
        let Some(service) = tokens
            .get(index + 1)
            .and_then(|t| sdk_service(&t.text, sdk_prefix))
        else {
            continue;
        };
        let end = (index..tokens.len())
            .find(|&i| tokens[i].is(";"))
            .unwrap_or(tokens.len());
        for at in index..end {
            if tokens[at].is("Client") {
                let local = if tokens.get(at + 1).is_some_and(|t| t.is("as")) {
                    tokens.get(at + 2).map(|t| t.text.clone())
                } else {
                    Some("Client".to_string())
                };
                imported.extend(local.map(|name| (name, service.clone())));
            }
        }
    }
    imported
}

/// The SDK service a type or path names, if any: `<sdk crate>::Client` anywhere in it, or a
/// client imported under another name.
fn client_service_in(
    span: &[Token],
    sdk_prefix: &str,
    imported: &BTreeMap<String, String>,
) -> Option<String> {
    span.windows(3)
        .find(|w| w[1].is("::") && w[2].is("Client"))
        .and_then(|w| sdk_service(&w[0].text, sdk_prefix))
        .or_else(|| {
            span.iter()
                .filter(|t| t.is_ident())
                .find_map(|t| imported.get(&t.text).cloned())
        })
}

/// What each name is declared to hold in the file: `name: Type` (fields, parameters) and
/// `name: path::to::Client::new(..)` (struct literals), `let name = path::...`. A type or path
/// naming `<sdk crate>::Client` (or a client imported with `use`) is an SDK client; any other
/// type (`reqwest::Client`, `Option<Foo>`) is something else.
fn declarations(tokens: &[Token], sdk_prefix: &str) -> BTreeMap<String, BTreeSet<Holds>> {
    let imported = imported_clients(tokens, sdk_prefix);
    let mut declared: BTreeMap<String, BTreeSet<Holds>> = BTreeMap::new();
    for index in 0..tokens.len().saturating_sub(2) {
        let (name, sign) = (&tokens[index], &tokens[index + 1]);
        if !name.is_ident() || !(sign.is(":") || sign.is("=")) {
            continue;
        }
        let start = index + 2;
        let stop = (start..tokens.len())
            .find(|&i| {
                [",", ";", ")", "{", "}", "=", "("]
                    .iter()
                    .any(|p| tokens[i].is(p))
            })
            .unwrap_or(tokens.len());
        let span = &tokens[start..stop];
        let holds = match client_service_in(span, sdk_prefix, &imported) {
            Some(service) => Holds::SdkClient(service),
            // A type: its first identifier starts with a capital or is a path to one.
            None if sign.is(":")
                && span
                    .iter()
                    .filter(|t| t.is_ident())
                    .any(|t| t.text.starts_with(char::is_uppercase)) =>
            {
                Holds::Other
            }
            None => continue,
        };
        declared.entry(name.text.clone()).or_default().insert(holds);
    }
    declared
}

/// The SDK calls of one file (`label` names it in messages), or what stops the test from telling
/// which client a call uses.
pub(super) fn sdk_calls(
    label: &str,
    tokens: &[Token],
    sdk_prefix: &str,
) -> Result<Vec<SdkCall>, Vec<String>> {
    let named_services: BTreeSet<String> = tokens
        .iter()
        .filter(|t| t.is_ident())
        .filter_map(|t| sdk_service(&t.text, sdk_prefix))
        .collect();
    let declared = declarations(tokens, sdk_prefix);
    let mut calls = Vec::new();
    let mut problems = Vec::new();
    for index in 0..tokens.len().saturating_sub(3) {
        let is_send = tokens[index].is(".")
            && tokens[index + 1].is("send")
            && tokens[index + 2].is("(")
            && tokens[index + 3].is(")");
        if !is_send {
            continue;
        }
        let at = format!("{label}:{}", tokens[index + 1].line);
        let (mut links, head_path) = chain_before(tokens, index);
        if !head_path.is_empty() && links.first().is_some_and(|link| link.is_call) {
            // `path::Client::new(..).operation()`: the first call builds the client.
            links.remove(0);
        }
        let request = match request_of(&links) {
            Some(request) => Some(request),
            None => match links.last() {
                Some(variable) if !variable.is_call => bound_request(tokens, &variable.name, index),
                _ => None,
            },
        };
        let Some(request) = request else {
            if !named_services.is_empty() {
                problems.push(format!(
                    "{at}: a .send() whose request the test cannot follow in a file that names \
                     the AWS SDK; build the request in one chain from the client \
                     (client.operation()...send()) or bind it with `let [mut] name = \
                     client.operation()...;` in the same function"
                ));
            }
            continue;
        };
        let client = request.receiver.last().cloned();
        let holds = client
            .as_ref()
            .and_then(|name| declared.get(name))
            .cloned()
            .unwrap_or_default();
        let head_service = head_path
            .windows(2)
            .find(|pair| pair[1] == "Client")
            .and_then(|pair| sdk_service(&pair[0], sdk_prefix));
        let sdk: BTreeSet<&String> = holds
            .iter()
            .filter_map(|h| match h {
                Holds::SdkClient(service) => Some(service),
                Holds::Other => None,
            })
            .chain(head_service.iter())
            .collect();
        let other = holds.contains(&Holds::Other);
        let service = match (sdk.len(), other) {
            (1, false) => sdk.into_iter().next().cloned(),
            (0, true) => None,
            (0, false) if named_services.is_empty() => None,
            (0, false) if named_services.len() == 1 => named_services.iter().next().cloned(),
            _ => {
                problems.push(format!(
                    "{at}: cannot tell which AWS SDK client `{}` is ({}): declare it once in \
                     this file with its type, like `{}: aws_sdk_<service>::Client`, under a name \
                     no other client or value in the file uses",
                    client.as_deref().unwrap_or("(none)"),
                    request.operation,
                    client.as_deref().unwrap_or("client"),
                ));
                continue;
            }
        };
        if let Some(service) = service {
            calls.push(SdkCall {
                at,
                service,
                operation: request.operation,
                builder_methods: request.builder_methods,
            });
        }
    }
    if problems.is_empty() {
        Ok(calls)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::super::rust_items::strip_test_items;
    use super::super::rust_tokens::lex;
    use super::*;

    const PREFIX: &str = "fake_sdk_";

    fn calls_of(source: &str) -> Result<Vec<(String, String, String)>, Vec<String>> {
        let tokens = strip_test_items(&lex(source));
        Ok(sdk_calls("f.rs", &tokens, PREFIX)?
            .into_iter()
            .map(|call| (call.at, call.service, call.operation))
            .collect())
    }

    fn call(line: usize, service: &str, operation: &str) -> (String, String, String) {
        (format!("f.rs:{line}"), service.into(), operation.into())
    }

    #[test]
    fn operations_are_read_from_chains_bindings_and_typed_clients() {
        let source = r#"
            struct Functions { client: fake_sdk_lambda::Client }
            async fn alarms(cloudwatch: &fake_sdk_cloudwatch::Client, http: reqwest::Client) {
                cloudwatch
                    .describe_alarms()
                    .set_alarm_name_prefix(Some(")".into())) // a ")" in a string
                    .send()
                    .await;
                http.get("https://example.com/").send().await; // not the SDK
            }
            impl Functions {
                async fn alias(&self) {
                    call_with_retries(|| self.client.clone().get_alias().name("live").send());
                    let mut request = self.client.update_alias().name("live");
                    request = request.function_version("7");
                    request.send().await;
                }
            }
            #[cfg(test)]
            mod tests {
                async fn setup(client: fake_sdk_lambda::Client) { client.create_function().send().await; }
            }
        "#;
        assert_eq!(
            calls_of(source).unwrap(),
            vec![
                call(7, "cloudwatch", "describe_alarms"),
                call(13, "lambda", "get_alias"),
                call(16, "lambda", "update_alias"),
            ]
        );
    }

    #[test]
    fn builder_methods_include_those_called_on_a_bound_request() {
        let source = "fn f(client: fake_sdk_rds::Client) {\n let mut request = client.create_db_snapshot().db_instance_identifier(\"a\");\n request = request.tags(tag());\n request.send();\n}";
        let tokens = lex(source);
        let calls = sdk_calls("f.rs", &tokens, PREFIX).unwrap();
        assert_eq!(calls.len(), 1);
        let methods: Vec<&str> = calls[0]
            .builder_methods
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(methods, vec!["db_instance_identifier", "tags"]);
    }

    #[test]
    fn a_client_the_test_cannot_place_fails_with_what_to_do() {
        let source = "use fake_sdk_s3::primitives::ByteStream;\nuse fake_sdk_sns::types::Tag;\nasync fn f(c: &Clients) { c.thing.list_buckets().send().await; }";
        let problems = calls_of(source).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("f.rs:3: cannot tell which AWS SDK client `thing`")
                && problems[0].contains("declare it once in this file with its type"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_file_naming_one_sdk_crate_places_its_undeclared_clients() {
        let source = "use fake_sdk_sns::types::Tag;\nasync fn f(t: &Topic) { t.client.publish().send().await; }";
        assert_eq!(calls_of(source).unwrap(), vec![call(2, "sns", "publish")]);
    }

    #[test]
    fn a_name_that_is_an_sdk_client_and_something_else_is_ambiguous() {
        let source = "struct A { client: fake_sdk_s3::Client }\nstruct B { client: reqwest::Client }\nfn f(a: A) { a.client.get_object().send(); }";
        assert!(calls_of(source).unwrap_err()[0].contains("cannot tell"));
    }
}
