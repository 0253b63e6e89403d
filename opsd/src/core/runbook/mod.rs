//! Runbooks: Markdown an on-call engineer reads, whose steps `opsd runbook run` executes.
//!
//! A runbook is a Markdown file. An optional front matter (`---` lines) declares its parameters;
//! the `# ` heading is its title and the first paragraph its summary. Each `## ` section with one
//! runnable code block is a step, in order; sections without one are prose (templates, notes).
//! A runnable block's language says what the step does:
//! - ```` ```opsd ````: one opsd command, written as typed (`opsd status {service}`);
//! - ```` ```http ````: `GET URL` (or `HEAD`), then optional `status N` and `contains TEXT` lines;
//! - ```` ```sh ````: a shell script (`sh -e`), parameters substituted as quoted words.
//!
//! After the language: `dangerous` (asks before it runs), `timeout=DURATION` (default 15m) and
//! `allow-exit=N,M` (exit codes that also count as success). `{name}` is a parameter's value;
//! `{public_url}` (the `service` parameter's public address) and `{opsd_api}` are built in.
//! Parsing reports every problem with its line, so `opsd runbook check` lists them all.

pub mod run;
pub mod words;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::core::duration::parse_duration;

/// Parameters every runbook may use without declaring them.
pub const BUILT_IN_PARAMETERS: [&str; 2] = ["public_url", "opsd_api"];

/// A step runs at most this long unless it says otherwise.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Code block languages that look runnable but are not, so a reader is not misled.
const SHELL_LOOKALIKES: [&str; 4] = ["bash", "shell", "console", "zsh"];

/// opsd commands a runbook may not run: the daemon itself, and runbooks within runbooks.
const FORBIDDEN_COMMANDS: [&str; 2] = ["up", "runbook"];

/// A parsed runbook.
#[derive(Debug, Clone, PartialEq)]
pub struct Runbook {
    /// The file's stem: what `opsd runbook run NAME` names.
    pub name: String,
    pub title: String,
    pub summary: String,
    pub params: Vec<Parameter>,
    pub steps: Vec<Step>,
}

/// A declared parameter; without a default it must be given (`--param name=value`).
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    pub name: String,
    pub help: String,
    pub default: Option<String>,
}

/// One executable step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// 1-based position among the steps.
    pub number: usize,
    pub title: String,
    /// The title in lowercase words joined by `-`: what `--from` may name.
    pub slug: String,
    /// The line of the step's code block in the file.
    pub line: usize,
    pub action: StepAction,
    pub dangerous: bool,
    pub timeout: Duration,
    /// Exit codes besides 0 that count as success (`opsd gate` exits 2 after a rollback).
    pub allowed_exits: Vec<i32>,
}

/// What a step does. Texts still hold their `{placeholders}`.
#[derive(Debug, Clone, PartialEq)]
pub enum StepAction {
    /// opsd's arguments, without the leading `opsd`.
    Opsd {
        args: Vec<String>,
    },
    Http {
        method: HttpMethod,
        url: String,
        /// The status that passes; any 2xx when unset.
        status: Option<u16>,
        /// Text the body must contain.
        contains: Option<String>,
    },
    Shell {
        script: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Head,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
        }
    }
}

impl StepAction {
    /// `opsd`, `http` or `sh`.
    pub fn kind(&self) -> &'static str {
        match self {
            StepAction::Opsd { .. } => "opsd",
            StepAction::Http { .. } => "http",
            StepAction::Shell { .. } => "sh",
        }
    }

    /// The step as a reader sees it, placeholders included.
    pub fn describe(&self) -> String {
        match self {
            StepAction::Opsd { args } => format!("opsd {}", args.join(" ")),
            StepAction::Http { method, url, .. } => format!("{} {url}", method.as_str()),
            StepAction::Shell { script } => script.trim().to_string(),
        }
    }

    /// Every text of the step that may hold placeholders.
    fn texts(&self) -> Vec<&str> {
        match self {
            StepAction::Opsd { args } => args.iter().map(String::as_str).collect(),
            StepAction::Http { url, contains, .. } => {
                let mut texts = vec![url.as_str()];
                texts.extend(contains.as_deref());
                texts
            }
            StepAction::Shell { script } => vec![script.as_str()],
        }
    }
}

/// A problem in a runbook, at a line of its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunbookProblem {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for RunbookProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    #[serde(default)]
    params: BTreeMap<String, RawParameter>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParameter {
    help: String,
    #[serde(default)]
    default: Option<String>,
}

/// A code block being read.
struct Block {
    line: usize,
    info: String,
    body: Vec<String>,
}

/// Parses the runbook `name` from its Markdown `text`; every problem found, with its line.
pub fn parse(name: &str, text: &str) -> Result<Runbook, Vec<RunbookProblem>> {
    let mut problems = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let (front, body_start) = front_matter(&lines, &mut problems);
    let params = parameters(front, &mut problems);

    let mut title: Option<String> = None;
    let mut summary = String::new();
    let mut summary_done = false;
    let mut section: Option<(usize, String)> = None;
    let mut section_blocks: Vec<Block> = Vec::new();
    let mut steps = Vec::new();
    let mut open_block: Option<Block> = None;

    for (index, line) in lines.iter().enumerate().skip(body_start) {
        let number = index + 1;
        if let Some(block) = open_block.as_mut() {
            if line.trim() == "```" {
                section_blocks.push(open_block.take().expect("a block is open"));
            } else {
                block.body.push(line.to_string());
            }
            continue;
        }
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            open_block = Some(Block {
                line: number,
                info: info.trim().to_string(),
                body: Vec::new(),
            });
            summary_done |= title.is_some();
            continue;
        }
        if let Some(heading) = line.strip_prefix("## ") {
            finish_section(
                section.take(),
                &mut section_blocks,
                &mut steps,
                &mut problems,
            );
            section = Some((number, heading.trim().to_string()));
            summary_done = true;
        } else if let Some(heading) = line.strip_prefix("# ") {
            if title.is_some() {
                problems.push(problem(number, "a second `# ` title; a runbook has one"));
            } else {
                title = Some(heading.trim().to_string());
            }
        } else if title.is_some() && !summary_done && section.is_none() {
            if line.trim().is_empty() {
                summary_done = !summary.is_empty();
            } else {
                if !summary.is_empty() {
                    summary.push(' ');
                }
                summary.push_str(line.trim());
            }
        }
    }
    if let Some(block) = open_block {
        problems.push(problem(
            block.line,
            "this code block is never closed with ```",
        ));
    }
    finish_section(section, &mut section_blocks, &mut steps, &mut problems);

    if steps.is_empty() && problems.is_empty() {
        problems.push(problem(
            1,
            "no steps: a step is a `## ` section with one ```opsd, ```http or ```sh block",
        ));
    }
    let title = title.unwrap_or_else(|| {
        problems.push(problem(1, "no `# ` title"));
        String::new()
    });
    check_placeholders(&steps, &params, &mut problems);
    if problems.is_empty() {
        Ok(Runbook {
            name: name.to_string(),
            title,
            summary,
            params,
            steps,
        })
    } else {
        problems.sort_by_key(|problem| problem.line);
        Err(problems)
    }
}

fn problem(line: usize, message: impl Into<String>) -> RunbookProblem {
    RunbookProblem {
        line,
        message: message.into(),
    }
}

/// The front matter between `---` lines at the top, and the index of the first line after it.
fn front_matter(lines: &[&str], problems: &mut Vec<RunbookProblem>) -> (FrontMatter, usize) {
    if lines.first().map(|line| line.trim()) != Some("---") {
        return (FrontMatter::default(), 0);
    }
    let Some(end) = lines.iter().skip(1).position(|line| line.trim() == "---") else {
        problems.push(problem(1, "the front matter is never closed with `---`"));
        return (FrontMatter::default(), lines.len());
    };
    let yaml = lines[1..=end].join("\n");
    match serde_yaml::from_str::<Option<FrontMatter>>(&yaml) {
        Ok(front) => (front.unwrap_or_default(), end + 2),
        Err(error) => {
            let line = error.location().map(|at| at.line() + 1).unwrap_or(1);
            let message = error.to_string();
            let message = message.split(" at line ").next().unwrap_or(&message);
            problems.push(problem(line, format!("front matter: {message}")));
            (FrontMatter::default(), end + 2)
        }
    }
}

fn parameters(front: FrontMatter, problems: &mut Vec<RunbookProblem>) -> Vec<Parameter> {
    let mut params = Vec::new();
    for (name, raw) in front.params {
        if !words::is_name(&name) {
            problems.push(problem(1, format!("parameter {name:?}: a name is lowercase letters, digits and _, starting with a letter")));
        } else if BUILT_IN_PARAMETERS.contains(&name.as_str()) {
            problems.push(problem(
                1,
                format!("parameter {name:?} is built in; pick another name"),
            ));
        } else {
            params.push(Parameter {
                name,
                help: raw.help,
                default: raw.default,
            });
        }
    }
    params
}

/// Turns a finished `## ` section into a step when it has a runnable block.
fn finish_section(
    section: Option<(usize, String)>,
    blocks: &mut Vec<Block>,
    steps: &mut Vec<Step>,
    problems: &mut Vec<RunbookProblem>,
) {
    let blocks = std::mem::take(blocks);
    let Some((heading_line, heading)) = section else {
        for block in blocks.iter().filter(|block| is_runnable(&block.info)) {
            problems.push(problem(
                block.line,
                "a runnable block outside a `## ` step section",
            ));
        }
        return;
    };
    let mut runnable = Vec::new();
    for block in blocks {
        let language = block.info.split_whitespace().next().unwrap_or("");
        if SHELL_LOOKALIKES.contains(&language) {
            problems.push(problem(block.line, format!("```{language} blocks are not run; write ```sh to run it as a step, or ```text to only show it")));
        } else if is_runnable(&block.info) {
            runnable.push(block);
        }
    }
    if runnable.len() > 1 {
        problems.push(problem(
            runnable[1].line,
            format!("the section {heading:?} (line {heading_line}) has more than one runnable block; make each its own `## ` step"),
        ));
        return;
    }
    let Some(block) = runnable.pop() else {
        return;
    };
    let number = steps.len() + 1;
    let title = strip_numbering(&heading);
    match step_of(&block, number, &title) {
        Ok(step) => steps.push(step),
        Err(message) => problems.push(problem(
            block.line,
            format!("step {number} ({title}): {message}"),
        )),
    }
}

fn is_runnable(info: &str) -> bool {
    matches!(info.split_whitespace().next(), Some("opsd" | "http" | "sh"))
}

/// `3. Roll back` and `Step 3: Roll back` are `Roll back`: opsd numbers the steps itself.
fn strip_numbering(heading: &str) -> String {
    let rest = heading
        .strip_prefix("Step ")
        .or_else(|| heading.strip_prefix("step "))
        .unwrap_or(heading);
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 {
        let after = rest[digits..].trim_start_matches(['.', ':', ')']);
        if after.starts_with(' ') {
            return after.trim().to_string();
        }
    }
    heading.trim().to_string()
}

/// The `--from` name of a title.
pub fn slug(title: &str) -> String {
    title
        .to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

fn step_of(block: &Block, number: usize, title: &str) -> Result<Step, String> {
    let mut options = block.info.split_whitespace();
    let language = options.next().unwrap_or("");
    let mut dangerous = false;
    let mut timeout = DEFAULT_STEP_TIMEOUT;
    let mut allowed_exits = Vec::new();
    for option in options {
        if option == "dangerous" {
            dangerous = true;
        } else if let Some(value) = option.strip_prefix("timeout=") {
            timeout = parse_duration(value).map_err(|error| format!("timeout={value}: {error}"))?;
        } else if let Some(value) = option.strip_prefix("allow-exit=") {
            for code in value.split(',') {
                allowed_exits
                    .push(code.parse::<i32>().map_err(|_| {
                        format!("allow-exit={value}: {code:?} is not an exit code")
                    })?);
            }
        } else {
            return Err(format!(
                "unknown option {option:?} after ```{language}; use dangerous, timeout=DURATION or allow-exit=N,M"
            ));
        }
    }
    let lines: Vec<&str> = block
        .body
        .iter()
        .map(String::as_str)
        .filter(|line| !line.trim().is_empty())
        .collect();
    let action = match language {
        "opsd" => opsd_action(&lines)?,
        "http" => http_action(&lines)?,
        _ => {
            if lines.is_empty() {
                return Err("the script is empty".into());
            }
            StepAction::Shell {
                script: block.body.join("\n"),
            }
        }
    };
    if !allowed_exits.is_empty() && matches!(action, StepAction::Http { .. }) {
        return Err("allow-exit is for opsd and sh steps; an http step says `status N`".into());
    }
    Ok(Step {
        number,
        title: title.to_string(),
        slug: slug(title),
        line: block.line,
        action,
        dangerous,
        timeout,
        allowed_exits,
    })
}

/// One opsd command; `\` at a line's end continues it, `#` lines are comments.
fn opsd_action(lines: &[&str]) -> Result<StepAction, String> {
    let mut command = String::new();
    let mut commands = 0;
    let mut continued = false;
    for line in lines {
        let line = line.trim();
        if line.starts_with('#') && !continued {
            continue;
        }
        if !continued {
            commands += 1;
        }
        let (text, continues) = match line.strip_suffix('\\') {
            Some(text) => (text, true),
            None => (line, false),
        };
        command.push_str(text);
        command.push(' ');
        continued = continues;
    }
    if commands != 1 {
        return Err(format!(
            "an opsd step runs exactly one command; this block has {commands}"
        ));
    }
    let mut args = words::split_words(&command)?;
    if args.first().map(String::as_str) != Some("opsd") {
        return Err("write the command as typed, starting with `opsd`".into());
    }
    args.remove(0);
    match args.first().map(String::as_str) {
        None => Err("`opsd` alone is not a command".into()),
        Some(sub) if FORBIDDEN_COMMANDS.contains(&sub) => Err(format!(
            "`opsd {sub}` cannot be a runbook step (the daemon runs on its own; runbooks do not nest)"
        )),
        Some(_) => Ok(StepAction::Opsd { args }),
    }
}

/// `GET URL`, then `status N` and `contains TEXT` lines.
fn http_action(lines: &[&str]) -> Result<StepAction, String> {
    let Some((first, rest)) = lines.split_first() else {
        return Err("the block is empty; write `GET URL`".into());
    };
    let mut request = first.split_whitespace();
    let method = match request.next() {
        Some("GET") => HttpMethod::Get,
        Some("HEAD") => HttpMethod::Head,
        Some(other) => {
            return Err(format!(
                "{other:?}: an http step checks with GET or HEAD; change things through opsd steps"
            ))
        }
        None => return Err("write `GET URL`".into()),
    };
    let url = request
        .next()
        .ok_or("the request line has no URL")?
        .to_string();
    if request.next().is_some() {
        return Err("the request line is `METHOD URL` and nothing more".into());
    }
    if !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with('{')) {
        return Err(format!("{url:?} is not an http:// or https:// URL"));
    }
    let mut status = None;
    let mut contains = None;
    for line in rest {
        let line = line.trim();
        if let Some(value) = line.strip_prefix("status ") {
            let code = value
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|code| (100..600).contains(code))
                .ok_or_else(|| format!("status {value}: not an HTTP status"))?;
            status = Some(code);
        } else if let Some(value) = line.strip_prefix("contains ") {
            let text = words::split_words(value)?.join(" ");
            if method == HttpMethod::Head {
                return Err("a HEAD answer has no body to contain anything".into());
            }
            contains = Some(text);
        } else {
            return Err(format!(
                "{line:?}: after the request come only `status N` and `contains TEXT`"
            ));
        }
    }
    Ok(StepAction::Http {
        method,
        url,
        status,
        contains,
    })
}

fn check_placeholders(steps: &[Step], params: &[Parameter], problems: &mut Vec<RunbookProblem>) {
    let declared = |name: &str| {
        BUILT_IN_PARAMETERS.contains(&name) || params.iter().any(|param| param.name == name)
    };
    for step in steps {
        for text in step.action.texts() {
            for name in words::placeholders(text) {
                if !declared(&name) {
                    problems.push(problem(
                        step.line,
                        format!(
                            "step {} ({}): {{{name}}} is not a parameter; declare it under `params:` in the front matter",
                            step.number, step.title
                        ),
                    ));
                }
            }
        }
        if step
            .action
            .texts()
            .iter()
            .any(|text| text.contains("{public_url}"))
            && !params.iter().any(|param| param.name == "service")
        {
            problems.push(problem(
                step.line,
                format!(
                    "step {} ({}): {{public_url}} is the public address of the `service` parameter, which this runbook does not declare",
                    step.number, step.title
                ),
            ));
        }
    }
}

impl Runbook {
    /// The index of the step `--from` names: its number or its slug.
    pub fn step_index(&self, from: &str) -> Result<usize, String> {
        let found = match from.parse::<usize>() {
            Ok(number) => self.steps.iter().position(|step| step.number == number),
            Err(_) => {
                let wanted = slug(from);
                self.steps.iter().position(|step| step.slug == wanted)
            }
        };
        found.ok_or_else(|| {
            format!(
                "{from:?} is not a step of {}; its steps are {}",
                self.name,
                self.steps
                    .iter()
                    .map(|step| format!("{} ({})", step.number, step.slug))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }

    /// The parameters' values: the given ones over the defaults. Errors name a missing or
    /// unknown parameter.
    pub fn values(
        &self,
        given: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, String> {
        if let Some(unknown) = given
            .keys()
            .find(|name| !self.params.iter().any(|param| &param.name == *name))
        {
            return Err(format!(
                "{} has no parameter {unknown:?}; its parameters are: {}",
                self.name,
                self.parameter_names()
            ));
        }
        let mut values = BTreeMap::new();
        for param in &self.params {
            let value = given
                .get(&param.name)
                .or(param.default.as_ref())
                .ok_or_else(|| {
                    format!(
                        "{} needs --param {}=VALUE ({})",
                        self.name, param.name, param.help
                    )
                })?;
            if value.chars().any(char::is_control) {
                return Err(format!(
                    "the value of {} has control characters",
                    param.name
                ));
            }
            values.insert(param.name.clone(), value.clone());
        }
        Ok(values)
    }

    fn parameter_names(&self) -> String {
        if self.params.is_empty() {
            "none".into()
        } else {
            self.params
                .iter()
                .map(|param| param.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

#[cfg(test)]
mod tests;
