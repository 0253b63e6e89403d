//! Cutting text to a channel's limits without splitting a character.

/// At most `limit` bytes of `text`, cut on a character boundary.
pub(super) fn truncate_bytes(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut cut = limit;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

/// At most `limit` characters of `text`, cut on a character boundary.
pub(super) fn truncate_chars(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => text[..cut].to_string(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::notify::pagerduty::pagerduty_body;
    use crate::notify::slack::slack_body;
    use crate::notify::test_support::notification;
    use crate::notify::Severity;

    #[test]
    fn long_texts_are_cut_on_character_boundaries() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("hi", 10), "hi");
        let mut long = notification(&"k".repeat(300), Severity::Info);
        long.title = "é".repeat(2000);
        let body = pagerduty_body(&long, "key", Utc::now());
        assert_eq!(body["dedup_key"].as_str().unwrap().chars().count(), 255);
        assert_eq!(
            body["payload"]["summary"].as_str().unwrap().chars().count(),
            1024
        );
        let slack = slack_body(&long);
        assert_eq!(
            slack["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            150
        );
    }
}
