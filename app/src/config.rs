//! Steno's settings: parsed from a map of environment variables (only `main` reads the real
//! environment) and validated into typed values with errors that name the variable.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::client_identity::TrustedProxies;
use crate::extract::DocumentLimits;
use crate::storage::S3Settings;

/// Where uploaded documents are kept.
#[derive(Debug, Clone)]
pub enum StorageSettings {
    Directory(PathBuf),
    S3(S3Settings),
}

/// Fault injection for canary drills. Everything is off by default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChaosSettings {
    /// Fraction (0..=1) of non-health requests answered with a 500.
    pub error_rate: f64,
    /// Latency added to every non-health request.
    pub added_latency: Duration,
    /// Health answers 503 while true.
    pub fail_health: bool,
    /// Spaces appended to every non-health response body (a release that sends more bytes).
    pub padding_bytes: usize,
    /// When the faults above begin: `STENO_CHAOS_AFTER_SECS` after the process read its
    /// settings (a release that turns bad after a while); `None`: from the start.
    pub engaged_from: Option<std::time::Instant>,
    /// Letter exports (PDF and Word, API and web UI) answer 500 while everything else works.
    pub break_export: bool,
}

/// The most `STENO_CHAOS_PAD_BYTES` may add to one response.
pub const MAX_CHAOS_PADDING_BYTES: usize = 16 * 1024 * 1024;

impl ChaosSettings {
    pub fn is_active(&self) -> bool {
        self.error_rate > 0.0
            || !self.added_latency.is_zero()
            || self.fail_health
            || self.padding_bytes > 0
            || self.break_export
    }

    /// Whether the configured faults apply now (see `engaged_from`).
    pub fn is_engaged(&self) -> bool {
        self.engaged_from
            .is_none_or(|from| std::time::Instant::now() >= from)
    }
}

/// The Anthropic Messages API, used for drafting when a key is configured.
#[derive(Debug, Clone)]
pub struct AnthropicSettings {
    pub api_key: String,
    pub base_url: Option<String>,
    pub model: Option<String>,
}

/// Login throttling, password hashing bounds, trusted proxies and the public URL.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountSecuritySettings {
    /// Failed logins per account (email) allowed in one window before the account is locked
    /// for the rest of it (`STENO_LOGIN_ACCOUNT_MAX_FAILURES`).
    pub account_max_failures: u32,
    /// `STENO_LOGIN_ACCOUNT_WINDOW_SECS`.
    pub account_window: Duration,
    /// Password attempts (login, registration, invitation acceptance, password change) per
    /// client address in one window (`STENO_LOGIN_CLIENT_MAX_ATTEMPTS`).
    pub client_max_attempts: u32,
    /// `STENO_LOGIN_CLIENT_WINDOW_SECS`.
    pub client_window: Duration,
    /// Client addresses tracked at once by the per-client limiter.
    pub client_table_size: usize,
    /// Password hashes computed at once (`STENO_PASSWORD_HASH_CONCURRENCY`).
    pub hash_concurrency: usize,
    /// Callers allowed to wait for a hashing slot before new ones are refused with 429
    /// (`STENO_PASSWORD_HASH_QUEUE`).
    pub hash_queue: usize,
    /// Proxies whose `X-Forwarded-For`/`X-Forwarded-Proto` are believed (`STENO_TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
    /// The address users reach Steno at (`STENO_PUBLIC_URL`), scheme and host, no trailing slash.
    /// When it is `https://...`, cookies are `Secure` and every form must come from that origin.
    pub public_url: Option<String>,
}

impl Default for AccountSecuritySettings {
    fn default() -> AccountSecuritySettings {
        let cores = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(2);
        AccountSecuritySettings {
            account_max_failures: 10,
            account_window: Duration::from_secs(15 * 60),
            client_max_attempts: 30,
            client_window: Duration::from_secs(60),
            client_table_size: 100_000,
            hash_concurrency: (cores / 2).max(1),
            hash_queue: 32,
            trusted_proxies: TrustedProxies::default(),
            public_url: None,
        }
    }
}

/// Which program Steno runs as its extractor child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtractorProgram {
    /// The running `steno` binary itself (`/proc/self/exe` on Linux, so a binary replaced on
    /// disk during a deploy still extracts with its own code).
    ThisExecutable,
    /// Another `steno` binary (tests and embedders whose own executable is not `steno`).
    Path(PathBuf),
}

/// The bounded extractor child process: where it comes from and what it may use.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractorSettings {
    pub program: ExtractorProgram,
    /// Extractions running at once; further uploads wait (up to `timeout`) for a slot.
    pub concurrency: usize,
    /// Address-space limit of each child (`RLIMIT_AS`).
    pub memory_bytes: u64,
    /// CPU-time limit of each child (`RLIMIT_CPU`).
    pub cpu_seconds: u64,
    /// Wall-clock limit of each child, after which it is killed.
    pub timeout: Duration,
    /// Stack limit of each child (`RLIMIT_STACK`).
    pub stack_bytes: u64,
    /// What one document may make the child do.
    pub document: DocumentLimits,
}

pub const DEFAULT_EXTRACT_CONCURRENCY: usize = 2;
pub const DEFAULT_EXTRACT_MEMORY_BYTES: u64 = 512 * 1024 * 1024;
pub const DEFAULT_EXTRACT_CPU_SECS: u64 = 10;
pub const DEFAULT_EXTRACT_TIMEOUT_SECS: u64 = 20;
pub const DEFAULT_EXTRACT_STACK_BYTES: u64 = 8 * 1024 * 1024;
pub const DEFAULT_MAX_LOGO_DIMENSION: u32 = 4096;
pub const DEFAULT_MAX_DRAFT_SOURCE_BYTES: u64 = 8 * 1024 * 1024;
pub const DEFAULT_MAX_EXPORT_LETTER_BYTES: u64 = 1024 * 1024;

impl Default for ExtractorSettings {
    fn default() -> ExtractorSettings {
        ExtractorSettings {
            program: ExtractorProgram::ThisExecutable,
            concurrency: DEFAULT_EXTRACT_CONCURRENCY,
            memory_bytes: DEFAULT_EXTRACT_MEMORY_BYTES,
            cpu_seconds: DEFAULT_EXTRACT_CPU_SECS,
            timeout: Duration::from_secs(DEFAULT_EXTRACT_TIMEOUT_SECS),
            stack_bytes: DEFAULT_EXTRACT_STACK_BYTES,
            document: DocumentLimits::default(),
        }
    }
}

impl AccountSecuritySettings {
    pub fn public_url_is_https(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://"))
    }
}

/// Everything Steno needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub storage: StorageSettings,
    /// Overrides the token signing secret stored in the database.
    pub jwt_secret: Option<String>,
    pub token_ttl: Duration,
    pub max_upload_bytes: usize,
    pub version: String,
    pub chaos: ChaosSettings,
    /// The rehearsal migrations this process carries (`STENO_CHAOS_MIGRATIONS`) and which
    /// pending migrations its start applies (`serve --migrate`, `migrate --class`).
    pub migrations: crate::db::MigrationOptions,
    /// opsd's status document; its maintenance banner is shown in the UI.
    pub status_url: Option<String>,
    pub status_poll_interval: Duration,
    pub anthropic: Option<AnthropicSettings>,
    pub account_security: AccountSecuritySettings,
    /// The extractor child that reads uploaded documents and logos.
    pub extractor: ExtractorSettings,
    /// The widest or tallest logo accepted, in pixels (checked from the image header).
    pub max_logo_dimension: u32,
    /// Source-document text one draft may read.
    pub max_draft_source_bytes: u64,
    /// Text of one letter revision an export may render.
    pub max_export_letter_bytes: u64,
}

/// A setting that could not be used.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{variable}={value:?} is invalid: {reason}")]
pub struct SettingsError {
    pub variable: &'static str,
    pub value: String,
    pub reason: String,
}

/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "steno-data";
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;

impl Settings {
    /// Settings for tests and embedding: SQLite and documents under `data_dir`, no chaos.
    pub fn for_data_dir(data_dir: &std::path::Path) -> Settings {
        Settings {
            database_url: format!("sqlite://{}", data_dir.join("steno.db").display()),
            storage: StorageSettings::Directory(data_dir.join("documents")),
            jwt_secret: None,
            token_ttl: Duration::from_secs(8 * 3600),
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            version: env!("CARGO_PKG_VERSION").to_string(),
            chaos: ChaosSettings::default(),
            migrations: crate::db::MigrationOptions::default(),
            status_url: None,
            status_poll_interval: Duration::from_secs(15),
            anthropic: None,
            account_security: AccountSecuritySettings::default(),
            extractor: ExtractorSettings::default(),
            max_logo_dimension: DEFAULT_MAX_LOGO_DIMENSION,
            max_draft_source_bytes: DEFAULT_MAX_DRAFT_SOURCE_BYTES,
            max_export_letter_bytes: DEFAULT_MAX_EXPORT_LETTER_BYTES,
        }
    }

    /// Reads the settings from environment variables (see the README for the list).
    pub fn from_environment(
        variables: &HashMap<String, String>,
    ) -> Result<Settings, SettingsError> {
        let get = |name: &str| {
            variables
                .get(name)
                .map(|value| value.trim().to_string())
                .filter(|value| !value.is_empty())
        };
        let data_dir =
            PathBuf::from(get("STENO_DATA_DIR").unwrap_or_else(|| DEFAULT_DATA_DIR.into()));
        let mut settings = Settings::for_data_dir(&data_dir);
        if let Some(url) = get("DATABASE_URL") {
            settings.database_url = url;
        }
        if let Some(bucket) = get("STENO_S3_BUCKET") {
            settings.storage = StorageSettings::S3(S3Settings {
                bucket,
                prefix: get("STENO_S3_PREFIX"),
                region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
                endpoint_url: get("STENO_S3_ENDPOINT_URL"),
                force_path_style: get("STENO_S3_ENDPOINT_URL").is_some(),
                max_attempts: None,
            });
        } else if let Some(dir) = get("STENO_STORAGE_DIR") {
            settings.storage = StorageSettings::Directory(PathBuf::from(dir));
        }
        settings.jwt_secret = get("STENO_JWT_SECRET");
        if let Some(value) = get("STENO_TOKEN_TTL_SECS") {
            let seconds = parse_number::<u64>("STENO_TOKEN_TTL_SECS", &value)?;
            if seconds == 0 {
                return Err(invalid(
                    "STENO_TOKEN_TTL_SECS",
                    &value,
                    "must be at least 1 second",
                ));
            }
            settings.token_ttl = Duration::from_secs(seconds);
        }
        if let Some(value) = get("STENO_MAX_UPLOAD_BYTES") {
            let bytes = parse_number::<usize>("STENO_MAX_UPLOAD_BYTES", &value)?;
            if bytes == 0 {
                return Err(invalid(
                    "STENO_MAX_UPLOAD_BYTES",
                    &value,
                    "must be at least 1 byte",
                ));
            }
            settings.max_upload_bytes = bytes;
        }
        if let Some(version) = get("STENO_VERSION") {
            settings.version = version;
        }
        if let Some(value) = get("STENO_CHAOS_ERROR_RATE") {
            let rate = parse_number::<f64>("STENO_CHAOS_ERROR_RATE", &value)?;
            if !(0.0..=1.0).contains(&rate) {
                return Err(invalid(
                    "STENO_CHAOS_ERROR_RATE",
                    &value,
                    "must be a fraction between 0 and 1 (0.2 means 20 % of requests fail)",
                ));
            }
            settings.chaos.error_rate = rate;
        }
        if let Some(value) = get("STENO_CHAOS_LATENCY_MS") {
            let millis = parse_number::<u64>("STENO_CHAOS_LATENCY_MS", &value)?;
            settings.chaos.added_latency = Duration::from_millis(millis);
        }
        if let Some(value) = get("STENO_CHAOS_PAD_BYTES") {
            let bytes = parse_number::<usize>("STENO_CHAOS_PAD_BYTES", &value)?;
            if bytes > MAX_CHAOS_PADDING_BYTES {
                return Err(invalid(
                    "STENO_CHAOS_PAD_BYTES",
                    &value,
                    "must be at most 16777216 (16 MiB) bytes added to each response",
                ));
            }
            settings.chaos.padding_bytes = bytes;
        }
        if let Some(value) = get("STENO_CHAOS_FAIL_HEALTH") {
            settings.chaos.fail_health = parse_flag("STENO_CHAOS_FAIL_HEALTH", &value)?;
        }
        if let Some(value) = get("STENO_CHAOS_AFTER_SECS") {
            let seconds = parse_number::<u64>("STENO_CHAOS_AFTER_SECS", &value)?;
            if seconds > 86_400 {
                return Err(invalid(
                    "STENO_CHAOS_AFTER_SECS",
                    &value,
                    "must be at most 86400 seconds (one day) after the start",
                ));
            }
            settings.chaos.engaged_from =
                Some(std::time::Instant::now() + Duration::from_secs(seconds));
        }
        if let Some(value) = get("STENO_CHAOS_BREAK_EXPORT") {
            settings.chaos.break_export = parse_flag("STENO_CHAOS_BREAK_EXPORT", &value)?;
        }
        if let Some(value) = get("STENO_CHAOS_MIGRATIONS") {
            settings.migrations.rehearsal = crate::db::RehearsalMigrations::parse(&value)
                .map_err(|reason| invalid("STENO_CHAOS_MIGRATIONS", &value, &reason))?;
        }
        settings.status_url = get("STENO_STATUS_URL");
        if let Some(value) = get("STENO_STATUS_POLL_SECS") {
            let seconds = parse_number::<u64>("STENO_STATUS_POLL_SECS", &value)?;
            settings.status_poll_interval = Duration::from_secs(seconds.max(1));
        }
        read_limits(&get, &mut settings)?;
        if let Some(api_key) = get("ANTHROPIC_API_KEY") {
            settings.anthropic = Some(AnthropicSettings {
                api_key,
                base_url: get("ANTHROPIC_BASE_URL"),
                model: get("STENO_ANTHROPIC_MODEL"),
            });
        }
        read_account_security(&get, &mut settings.account_security)?;
        Ok(settings)
    }
}

fn read_account_security(
    get: &dyn Fn(&str) -> Option<String>,
    security: &mut AccountSecuritySettings,
) -> Result<(), SettingsError> {
    let positive = |variable: &'static str| -> Result<Option<u64>, SettingsError> {
        match get(variable) {
            Some(value) => {
                let number = parse_number::<u64>(variable, &value)?;
                if number == 0 {
                    return Err(invalid(variable, &value, "must be at least 1"));
                }
                Ok(Some(number))
            }
            None => Ok(None),
        }
    };
    let count = |number: u64| u32::try_from(number).unwrap_or(u32::MAX);
    if let Some(failures) = positive("STENO_LOGIN_ACCOUNT_MAX_FAILURES")? {
        security.account_max_failures = count(failures);
    }
    if let Some(seconds) = positive("STENO_LOGIN_ACCOUNT_WINDOW_SECS")? {
        security.account_window = Duration::from_secs(seconds);
    }
    if let Some(attempts) = positive("STENO_LOGIN_CLIENT_MAX_ATTEMPTS")? {
        security.client_max_attempts = count(attempts);
    }
    if let Some(seconds) = positive("STENO_LOGIN_CLIENT_WINDOW_SECS")? {
        security.client_window = Duration::from_secs(seconds);
    }
    if let Some(concurrency) = positive("STENO_PASSWORD_HASH_CONCURRENCY")? {
        security.hash_concurrency = usize::try_from(concurrency).unwrap_or(usize::MAX);
    }
    if let Some(value) = get("STENO_PASSWORD_HASH_QUEUE") {
        security.hash_queue = parse_number::<usize>("STENO_PASSWORD_HASH_QUEUE", &value)?;
    }
    if let Some(value) = get("STENO_TRUSTED_PROXIES") {
        security.trusted_proxies = TrustedProxies::parse(&value)
            .map_err(|reason| invalid("STENO_TRUSTED_PROXIES", &value, &reason))?;
    }
    if let Some(value) = get("STENO_PUBLIC_URL") {
        security.public_url = Some(parse_public_url(&value)?);
    }
    Ok(())
}

/// The extraction, logo, drafting and export limits (see `crate::limits` for their names).
fn read_limits(
    get: &impl Fn(&str) -> Option<String>,
    settings: &mut Settings,
) -> Result<(), SettingsError> {
    let positive = |variable: &'static str, minimum: u64| -> Result<Option<u64>, SettingsError> {
        let Some(value) = get(variable) else {
            return Ok(None);
        };
        let number = parse_number::<u64>(variable, &value)?;
        if number < minimum {
            return Err(invalid(
                variable,
                &value,
                &format!("must be at least {minimum}"),
            ));
        }
        Ok(Some(number))
    };
    let extractor = &mut settings.extractor;
    if let Some(path) = get("STENO_EXTRACTOR") {
        extractor.program = ExtractorProgram::Path(PathBuf::from(path));
    }
    if let Some(slots) = positive("STENO_EXTRACT_CONCURRENCY", 1)? {
        extractor.concurrency = usize::try_from(slots).unwrap_or(usize::MAX);
    }
    // The child is the steno binary itself: below ~64 MiB of address space it cannot start.
    if let Some(bytes) = positive("STENO_EXTRACT_MEMORY_BYTES", 64 * 1024 * 1024)? {
        extractor.memory_bytes = bytes;
    }
    if let Some(seconds) = positive("STENO_EXTRACT_CPU_SECS", 1)? {
        extractor.cpu_seconds = seconds;
    }
    if let Some(seconds) = positive("STENO_EXTRACT_TIMEOUT_SECS", 1)? {
        extractor.timeout = Duration::from_secs(seconds);
    }
    if let Some(bytes) = positive("STENO_EXTRACT_STACK_BYTES", 1024 * 1024)? {
        extractor.stack_bytes = bytes;
    }
    let document = &mut extractor.document;
    if let Some(bytes) = positive("STENO_MAX_EXTRACTED_TEXT_BYTES", 1)? {
        document.max_text_bytes = bytes;
    }
    if let Some(bytes) = positive("STENO_MAX_DECOMPRESSED_BYTES", 1)? {
        document.max_decompressed_bytes = bytes;
    }
    if let Some(depth) = positive("STENO_MAX_NESTING_DEPTH", 4)? {
        if depth > 1000 {
            return Err(invalid(
                "STENO_MAX_NESTING_DEPTH",
                &depth.to_string(),
                "must be at most 1000 (deeper nesting overflows the parser's stack)",
            ));
        }
        document.max_nesting_depth = depth as usize;
    }
    if let Some(objects) = positive("STENO_MAX_PDF_OBJECTS", 1)? {
        document.max_pdf_objects = objects;
    }
    if let Some(bytes) = positive("STENO_MAX_PAGE_CONTENT_BYTES", 1)? {
        document.max_page_content_bytes = bytes;
    }
    if let Some(pixels) = positive("STENO_MAX_LOGO_DIMENSION", 16)? {
        settings.max_logo_dimension = u32::try_from(pixels)
            .ok()
            .filter(|pixels| *pixels <= 65_535)
            .ok_or_else(|| {
                invalid(
                    "STENO_MAX_LOGO_DIMENSION",
                    &pixels.to_string(),
                    "must be at most 65535 pixels",
                )
            })?;
    }
    if let Some(bytes) = positive("STENO_MAX_DRAFT_SOURCE_BYTES", 1)? {
        settings.max_draft_source_bytes = bytes;
    }
    if let Some(bytes) = positive("STENO_MAX_EXPORT_LETTER_BYTES", 1)? {
        settings.max_export_letter_bytes = bytes;
    }
    Ok(())
}

/// `STENO_PUBLIC_URL`: `http(s)://host[:port]`, kept as the origin (no path, no trailing slash).
fn parse_public_url(value: &str) -> Result<String, SettingsError> {
    let reason = "expected the address users reach Steno at, such as https://steno.example.com";
    let (scheme, rest) = value
        .split_once("://")
        .ok_or_else(|| invalid("STENO_PUBLIC_URL", value, reason))?;
    let scheme = scheme.to_ascii_lowercase();
    let host = rest.split('/').next().unwrap_or_default();
    if !(scheme == "http" || scheme == "https") || host.is_empty() || host.contains('@') {
        return Err(invalid("STENO_PUBLIC_URL", value, reason));
    }
    Ok(format!("{scheme}://{}", host.to_ascii_lowercase()))
}

fn invalid(variable: &'static str, value: &str, reason: &str) -> SettingsError {
    SettingsError {
        variable,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn parse_number<T: std::str::FromStr>(
    variable: &'static str,
    value: &str,
) -> Result<T, SettingsError> {
    value
        .parse::<T>()
        .map_err(|_| invalid(variable, value, "expected a non-negative number"))
}

fn parse_flag(variable: &'static str, value: &str) -> Result<bool, SettingsError> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(variable, value, "expected true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_nothing() {
        let settings = Settings::from_environment(&HashMap::new()).unwrap();
        assert!(settings.database_url.starts_with("sqlite://steno-data/"));
        assert!(matches!(settings.storage, StorageSettings::Directory(_)));
        assert!(!settings.chaos.is_active());
        assert!(settings.anthropic.is_none());
        assert_eq!(settings.version, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn chaos_and_version_are_read() {
        let settings = Settings::from_environment(&env(&[
            ("STENO_VERSION", "v2"),
            ("STENO_CHAOS_ERROR_RATE", "0.2"),
            ("STENO_CHAOS_LATENCY_MS", "500"),
            ("STENO_CHAOS_FAIL_HEALTH", "true"),
            ("STENO_CHAOS_PAD_BYTES", "65536"),
            ("STENO_CHAOS_BREAK_EXPORT", "1"),
        ]))
        .unwrap();
        assert!(settings.chaos.break_export);
        assert_eq!(settings.chaos.padding_bytes, 65536);
        assert_eq!(settings.version, "v2");
        assert_eq!(settings.chaos.error_rate, 0.2);
        assert_eq!(settings.chaos.added_latency, Duration::from_millis(500));
        assert!(settings.chaos.fail_health);
        assert!(
            settings.chaos.is_engaged(),
            "without a delay faults apply at once"
        );
    }

    #[test]
    fn chaos_can_wait_before_it_engages() {
        let later = Settings::from_environment(&env(&[
            ("STENO_CHAOS_ERROR_RATE", "1"),
            ("STENO_CHAOS_AFTER_SECS", "3600"),
        ]))
        .unwrap();
        assert!(later.chaos.is_active());
        assert!(!later.chaos.is_engaged());
        let now = Settings::from_environment(&env(&[("STENO_CHAOS_AFTER_SECS", "0")])).unwrap();
        assert!(now.chaos.is_engaged());
        for bad in ["-1", "soon", "86401"] {
            let error =
                Settings::from_environment(&env(&[("STENO_CHAOS_AFTER_SECS", bad)])).unwrap_err();
            assert_eq!(error.variable, "STENO_CHAOS_AFTER_SECS", "{bad}");
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        let error =
            Settings::from_environment(&env(&[("STENO_CHAOS_ERROR_RATE", "20%")])).unwrap_err();
        assert_eq!(error.variable, "STENO_CHAOS_ERROR_RATE");
        let error =
            Settings::from_environment(&env(&[("STENO_CHAOS_ERROR_RATE", "1.5")])).unwrap_err();
        assert!(error.to_string().contains("between 0 and 1"));
        let error =
            Settings::from_environment(&env(&[("STENO_CHAOS_FAIL_HEALTH", "maybe")])).unwrap_err();
        assert_eq!(error.variable, "STENO_CHAOS_FAIL_HEALTH");
        let error = Settings::from_environment(&env(&[("STENO_CHAOS_BREAK_EXPORT", "sometimes")]))
            .unwrap_err();
        assert_eq!(error.variable, "STENO_CHAOS_BREAK_EXPORT");
        let error =
            Settings::from_environment(&env(&[("STENO_MAX_UPLOAD_BYTES", "0")])).unwrap_err();
        assert_eq!(error.variable, "STENO_MAX_UPLOAD_BYTES");
    }

    #[test]
    fn account_security_settings_are_read_and_checked() {
        let settings = Settings::from_environment(&env(&[
            ("STENO_LOGIN_ACCOUNT_MAX_FAILURES", "5"),
            ("STENO_LOGIN_ACCOUNT_WINDOW_SECS", "60"),
            ("STENO_LOGIN_CLIENT_MAX_ATTEMPTS", "100"),
            ("STENO_PASSWORD_HASH_CONCURRENCY", "3"),
            ("STENO_TRUSTED_PROXIES", "127.0.0.1,10.0.0.0/8"),
            ("STENO_PUBLIC_URL", "HTTPS://Steno.Example.com/app/"),
        ]))
        .unwrap();
        let security = settings.account_security;
        assert_eq!(security.account_max_failures, 5);
        assert_eq!(security.account_window, Duration::from_secs(60));
        assert_eq!(security.client_max_attempts, 100);
        assert_eq!(security.hash_concurrency, 3);
        assert!(security.trusted_proxies.trusts("10.1.2.3".parse().unwrap()));
        assert_eq!(
            security.public_url.as_deref(),
            Some("https://steno.example.com")
        );
        assert!(security.public_url_is_https());
        for (variable, value) in [
            ("STENO_TRUSTED_PROXIES", "10.0.0.0/40"),
            ("STENO_PUBLIC_URL", "steno.example.com"),
            ("STENO_LOGIN_ACCOUNT_MAX_FAILURES", "0"),
            ("STENO_PASSWORD_HASH_CONCURRENCY", "many"),
        ] {
            let error = Settings::from_environment(&env(&[(variable, value)])).unwrap_err();
            assert_eq!(error.variable, variable);
        }
    }

    #[test]
    fn limits_have_defaults_and_are_read() {
        let defaults = Settings::from_environment(&HashMap::new()).unwrap();
        assert_eq!(defaults.extractor, ExtractorSettings::default());
        assert_eq!(defaults.extractor.program, ExtractorProgram::ThisExecutable);
        assert_eq!(defaults.max_logo_dimension, 4096);
        let settings = Settings::from_environment(&env(&[
            ("STENO_EXTRACTOR", "/opt/steno/bin/steno"),
            ("STENO_EXTRACT_CONCURRENCY", "4"),
            ("STENO_EXTRACT_MEMORY_BYTES", "268435456"),
            ("STENO_EXTRACT_CPU_SECS", "5"),
            ("STENO_EXTRACT_TIMEOUT_SECS", "9"),
            ("STENO_EXTRACT_STACK_BYTES", "4194304"),
            ("STENO_MAX_EXTRACTED_TEXT_BYTES", "1000"),
            ("STENO_MAX_DECOMPRESSED_BYTES", "2000"),
            ("STENO_MAX_NESTING_DEPTH", "32"),
            ("STENO_MAX_PDF_OBJECTS", "500"),
            ("STENO_MAX_PAGE_CONTENT_BYTES", "3000"),
            ("STENO_MAX_LOGO_DIMENSION", "2048"),
            ("STENO_MAX_DRAFT_SOURCE_BYTES", "4000"),
            ("STENO_MAX_EXPORT_LETTER_BYTES", "5000"),
        ]))
        .unwrap();
        let extractor = &settings.extractor;
        assert_eq!(
            extractor.program,
            ExtractorProgram::Path(PathBuf::from("/opt/steno/bin/steno"))
        );
        assert_eq!(extractor.concurrency, 4);
        assert_eq!(extractor.memory_bytes, 268_435_456);
        assert_eq!(extractor.cpu_seconds, 5);
        assert_eq!(extractor.timeout, Duration::from_secs(9));
        assert_eq!(extractor.stack_bytes, 4_194_304);
        assert_eq!(
            extractor.document,
            DocumentLimits {
                max_text_bytes: 1000,
                max_decompressed_bytes: 2000,
                max_nesting_depth: 32,
                max_pdf_objects: 500,
                max_page_content_bytes: 3000,
            }
        );
        assert_eq!(settings.max_logo_dimension, 2048);
        assert_eq!(settings.max_draft_source_bytes, 4000);
        assert_eq!(settings.max_export_letter_bytes, 5000);
    }

    #[test]
    fn impossible_limits_name_the_variable() {
        for (variable, value) in [
            ("STENO_EXTRACT_CONCURRENCY", "0"),
            ("STENO_EXTRACT_MEMORY_BYTES", "1048576"),
            ("STENO_EXTRACT_TIMEOUT_SECS", "soon"),
            ("STENO_MAX_NESTING_DEPTH", "100000"),
            ("STENO_MAX_LOGO_DIMENSION", "70000"),
            ("STENO_MAX_EXTRACTED_TEXT_BYTES", "0"),
        ] {
            let error = Settings::from_environment(&env(&[(variable, value)])).unwrap_err();
            assert_eq!(error.variable, variable, "{error}");
        }
    }

    #[test]
    fn s3_is_chosen_by_bucket() {
        let settings = Settings::from_environment(&env(&[
            ("STENO_S3_BUCKET", "docs"),
            ("STENO_S3_ENDPOINT_URL", "http://127.0.0.1:9000"),
        ]))
        .unwrap();
        match settings.storage {
            StorageSettings::S3(s3) => {
                assert_eq!(s3.bucket, "docs");
                assert!(s3.force_path_style);
            }
            other => panic!("expected S3 storage, got {other:?}"),
        }
    }
}
