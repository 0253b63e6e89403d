//! Human-written durations in configuration: `500ms`, `30s`, `5m`, `1h`, `30d`, `1m30s`, or bare
//! seconds.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// The units a duration may be written in, largest first (a duration lists them in this order).
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses a duration such as `500ms`, `30s`, `5m`, `1h` or `1m30s`; a bare integer is seconds.
///
/// Parts are whole numbers followed by a unit (`d`, `h`, `m`, `s`, `ms`), largest unit first, each unit
/// at most once; spaces between them are allowed (`1m 30s`). The error says what was wrong and shows the accepted forms.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!("an empty text is not a duration; {}", EXAMPLES));
    }
    if trimmed.bytes().all(|byte| byte.is_ascii_digit()) {
        let seconds: u64 = trimmed
            .parse()
            .map_err(|_| format!("{trimmed:?} is too long a duration"))?;
        return Ok(Duration::from_secs(seconds));
    }

    let mut total_ms: u64 = 0;
    let mut rest = trimmed;
    // Index into UNITS of the last unit used; later parts must use a smaller unit.
    let mut previous_unit: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest
            .bytes()
            .take_while(|byte| byte.is_ascii_digit())
            .count();
        if digits == 0 {
            return Err(format!(
                "{trimmed:?} is not a duration: expected a number at {rest:?}; {EXAMPLES}"
            ));
        }
        let (number_text, after_number) = rest.split_at(digits);
        let after_number = after_number.trim_start();
        let unit_length = after_number
            .bytes()
            .take_while(|byte| byte.is_ascii_alphabetic())
            .count();
        let (unit_text, after_unit) = after_number.split_at(unit_length);
        if unit_text.is_empty() {
            return Err(format!(
                "{trimmed:?} is not a duration: {number_text} has no unit; {EXAMPLES}"
            ));
        }
        let Some(unit_index) = UNITS.iter().position(|(name, _)| *name == unit_text) else {
            return Err(format!(
                "{trimmed:?} is not a duration: unknown unit {unit_text:?}; {EXAMPLES}"
            ));
        };
        if previous_unit.is_some_and(|previous| unit_index <= previous) {
            return Err(format!(
                "{trimmed:?} is not a duration: write each unit once, largest first (like 1h30m or 1m30s)"
            ));
        }
        previous_unit = Some(unit_index);
        let part_ms = number_text
            .parse::<u64>()
            .ok()
            .and_then(|number| number.checked_mul(UNITS[unit_index].1))
            .and_then(|part| total_ms.checked_add(part));
        total_ms = part_ms.ok_or_else(|| format!("{trimmed:?} is too long a duration"))?;
        rest = after_unit.trim_start();
    }
    Ok(Duration::from_millis(total_ms))
}

const EXAMPLES: &str = "write it like 500ms, 30s, 5m, 1h, 30d or 1m30s (a bare number is seconds)";

/// Writes a duration the way [`parse_duration`] reads it (`0s`, `500ms`, `5m`, `1m30s`).
/// Sub-millisecond parts are dropped.
pub fn format_duration(duration: Duration) -> String {
    let mut remaining_ms = duration.as_millis();
    if remaining_ms == 0 {
        return "0s".to_string();
    }
    let mut text = String::new();
    for (name, unit_ms) in UNITS {
        let unit_ms = u128::from(unit_ms);
        let count = remaining_ms / unit_ms;
        if count > 0 {
            text.push_str(&format!("{count}{name}"));
            remaining_ms -= count * unit_ms;
        }
    }
    text
}

/// A duration as written in a configuration file: a string [`parse_duration`] accepts or a
/// non-negative integer of seconds. Errors are raised while deserializing, so serde_yaml reports
/// them with the value's line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ConfigDurationVisitor)
    }
}

struct ConfigDurationVisitor;

impl Visitor<'_> for ConfigDurationVisitor {
    type Value = ConfigDuration;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a duration like 500ms, 30s, 5m, 1h or 1m30s, or whole seconds")
    }

    fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<ConfigDuration, E> {
        Ok(ConfigDuration(Duration::from_secs(seconds)))
    }

    fn visit_i64<E: de::Error>(self, seconds: i64) -> Result<ConfigDuration, E> {
        u64::try_from(seconds)
            .map(|seconds| ConfigDuration(Duration::from_secs(seconds)))
            .map_err(|_| E::custom(format!("{seconds} is negative; a duration cannot be")))
    }

    fn visit_f64<E: de::Error>(self, seconds: f64) -> Result<ConfigDuration, E> {
        Err(E::custom(format!(
            "{seconds} is not a whole number of seconds; {EXAMPLES}"
        )))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<ConfigDuration, E> {
        parse_duration(text).map(ConfigDuration).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_documented_form() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3_600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(
            parse_duration("1h2m3s4ms"),
            Ok(Duration::from_millis(3_723_004))
        );
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration(" 0 "), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1m 30 s"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for bad in [
            "",
            "5 parsecs",
            "5parsecs",
            "1.5s",
            "-3s",
            "s",
            "30s1m",
            "1m1m",
            "ms5",
        ] {
            let message = parse_duration(bad).unwrap_err();
            assert!(message.contains("duration"), "{bad}: {message}");
        }
        assert!(parse_duration("5 parsecs").unwrap_err().contains("30s"));
        assert!(parse_duration("5parsecs")
            .unwrap_err()
            .contains("unknown unit \"parsecs\""));
        assert!(parse_duration("5 parsecs")
            .unwrap_err()
            .contains("unknown unit \"parsecs\""));
        assert!(parse_duration("30s1m")
            .unwrap_err()
            .contains("largest first"));
        assert!(parse_duration("99999999999999999999h").is_err());
        assert!(parse_duration("9999999999999999h")
            .unwrap_err()
            .contains("too long"));
    }

    #[test]
    fn deserializes_from_yaml_text_or_seconds() {
        let read = |text: &str| serde_yaml::from_str::<ConfigDuration>(text).map(|value| value.0);
        assert_eq!(read("20s").unwrap(), Duration::from_secs(20));
        assert_eq!(read("\"1m30s\"").unwrap(), Duration::from_secs(90));
        assert_eq!(read("15").unwrap(), Duration::from_secs(15));
        assert!(read("-1").unwrap_err().to_string().contains("negative"));
        assert!(read("1.5")
            .unwrap_err()
            .to_string()
            .contains("whole number"));
        assert!(read("5 parsecs").is_err());
    }

    #[test]
    fn formats_what_it_reads() {
        for text in ["0s", "500ms", "30s", "5m", "1h", "1m30s", "1h2m3s4ms"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
