//! `opsd alarms status`: every alarm rule's production state, read from the running opsd, as a
//! table (or JSON).

use opsd::control::AlarmStatusView;

use super::client::Client;

/// Prints the alarm rules' states; exits 0 whatever they are.
pub async fn run_status(client: &Client, service: Option<&str>, json: bool) -> anyhow::Result<u8> {
    let answer = client.alarms(service).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print!("{}", format_status_table(&answer.alarms));
    }
    Ok(0)
}

/// One line per service and rule: state, since, value, condition, severity and targets; the
/// reason of each rule in ALARM under the table.
pub fn format_status_table(alarms: &[AlarmStatusView]) -> String {
    if alarms.is_empty() {
        return "no alarm rules are configured\n".to_string();
    }
    let header = [
        "SERVICE",
        "RULE",
        "STATE",
        "SINCE",
        "VALUE",
        "CONDITION",
        "SEVERITY",
        "NOTIFIES",
    ];
    let rows: Vec<[String; 8]> = alarms
        .iter()
        .map(|alarm| {
            [
                alarm.service.clone(),
                alarm.rule.clone(),
                alarm
                    .state
                    .clone()
                    .unwrap_or_else(|| "not evaluated yet".into()),
                alarm
                    .since
                    .as_deref()
                    .map(short_time)
                    .unwrap_or_else(|| "-".into()),
                alarm.value_text.clone().unwrap_or_else(|| "-".into()),
                alarm.condition.clone(),
                alarm.severity.to_string(),
                if alarm.notify_targets.is_empty() {
                    "-".into()
                } else {
                    alarm.notify_targets.join(",")
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if index + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        text.trim_end().to_string() + "\n"
    };
    let mut out = line(&header.map(str::to_string));
    for row in &rows {
        out.push_str(&line(row));
    }
    for alarm in alarms
        .iter()
        .filter(|alarm| alarm.state.as_deref() == Some("ALARM"))
    {
        out.push_str(&format!(
            "\n{} {} is in ALARM: {}\n",
            alarm.service,
            alarm.rule,
            alarm.reason.as_deref().unwrap_or_default()
        ));
    }
    out
}

/// `2026-01-31T12:00:00.123+00:00` → `2026-01-31 12:00:00Z`.
fn short_time(rfc3339: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(at) => at
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M:%SZ")
            .to_string(),
        Err(_) => rfc3339.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use opsd::core::severity::Severity;

    use super::*;

    fn view(rule: &str, state: Option<&str>) -> AlarmStatusView {
        AlarmStatusView {
            service: "steno".into(),
            rule: rule.into(),
            description: String::new(),
            severity: Severity::Critical,
            condition: "error_rate > 1.00 % for 1 period of 1m".into(),
            threshold: 0.01,
            state: state.map(str::to_string),
            since: state.map(|_| "2026-01-31T12:00:00.123+00:00".to_string()),
            value: state.map(|_| 0.2),
            value_text: state.map(|_| "20.00 %".to_string()),
            reason: state.map(|_| "error_rate 20.00 % > 1.00 % over the last 1m".to_string()),
            notify_targets: vec!["pager".into()],
        }
    }

    #[test]
    fn the_table_aligns_columns_and_explains_each_alarm() {
        let table =
            format_status_table(&[view("lambda-error-rate", Some("ALARM")), view("p99", None)]);
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("SERVICE  RULE               STATE"),
            "{table}"
        );
        assert!(lines[1].contains("ALARM") && lines[1].contains("2026-01-31 12:00:00Z"));
        assert!(lines[1].contains("20.00 %") && lines[1].ends_with("pager"));
        assert!(lines[2].contains("not evaluated yet"));
        assert_eq!(
            lines[0].find("STATE"),
            lines[1].find("ALARM"),
            "columns line up"
        );
        assert!(table.contains("steno lambda-error-rate is in ALARM: error_rate 20.00 %"));
        assert_eq!(format_status_table(&[]), "no alarm rules are configured\n");
    }
}
