//! AI tokens spent while answering one request, reported on the response so whatever routes the
//! traffic (opsd's router) can attribute AI spend to the release that served it.
//!
//! The request observation middleware runs each request inside [`metered`]; the service layer
//! calls [`record_ai_tokens`] after a drafting engine answers. Outside a metered request (a
//! background task, a test calling the service directly) recording does nothing.

use std::cell::Cell;
use std::future::Future;

use axum::http::{HeaderMap, HeaderValue};

/// Response header with the input tokens spent answering the request.
pub const AI_INPUT_TOKENS_HEADER: &str = "x-ai-input-tokens";
/// Response header with the output tokens spent answering the request.
pub const AI_OUTPUT_TOKENS_HEADER: &str = "x-ai-output-tokens";

/// Tokens spent so far by one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestTokens {
    pub input: u64,
    pub output: u64,
}

tokio::task_local! {
    static REQUEST_TOKENS: Cell<RequestTokens>;
}

/// Runs `work` with a fresh token meter and returns its output with the tokens it recorded.
pub async fn metered<F: Future>(work: F) -> (F::Output, RequestTokens) {
    REQUEST_TOKENS
        .scope(Cell::new(RequestTokens::default()), async move {
            let output = work.await;
            let tokens = REQUEST_TOKENS.with(Cell::get);
            (output, tokens)
        })
        .await
}

/// Adds tokens to the current request's meter, if there is one.
pub fn record_ai_tokens(input: u64, output: u64) {
    let _ = REQUEST_TOKENS.try_with(|cell| {
        let mut tokens = cell.get();
        tokens.input = tokens.input.saturating_add(input);
        tokens.output = tokens.output.saturating_add(output);
        cell.set(tokens);
    });
}

/// Puts the tokens on the response's headers when any were spent.
pub fn add_token_headers(headers: &mut HeaderMap, tokens: RequestTokens) {
    if tokens == RequestTokens::default() {
        return;
    }
    headers.insert(AI_INPUT_TOKENS_HEADER, HeaderValue::from(tokens.input));
    headers.insert(AI_OUTPUT_TOKENS_HEADER, HeaderValue::from(tokens.output));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_metered_request_collects_what_it_records() {
        let ((), tokens) = metered(async {
            record_ai_tokens(1_200, 800);
            tokio::task::yield_now().await;
            record_ai_tokens(300, 200);
        })
        .await;
        assert_eq!(
            tokens,
            RequestTokens {
                input: 1_500,
                output: 1_000
            }
        );
        // Outside a metered request nothing happens (and nothing panics).
        record_ai_tokens(5, 5);
        let mut headers = HeaderMap::new();
        add_token_headers(&mut headers, RequestTokens::default());
        assert!(headers.is_empty());
        add_token_headers(&mut headers, tokens);
        assert_eq!(headers[AI_INPUT_TOKENS_HEADER], "1500");
        assert_eq!(headers[AI_OUTPUT_TOKENS_HEADER], "1000");
    }
}
