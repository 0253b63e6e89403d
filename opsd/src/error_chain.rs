//! One line for an error and its causes (`outer: inner: innermost`), for logs and for messages
//! that name what went wrong at every level (SDK and HTTP client errors hide the cause in their
//! sources).

/// An error with its causes, `outer: inner: innermost`; a cause already at the end of the text
/// is not repeated.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("dispatch failure")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("connection refused")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn causes_follow_the_error_once_each() {
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        assert_eq!(
            error_chain(&Outer(refused)),
            "dispatch failure: connection refused"
        );
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        assert_eq!(error_chain(&Repeats(refused)), "connection refused");
    }
}
