//! Identifies the client of every request (address and HTTPS, see `client_identity`) from the TCP
//! peer, the Lambda request context and the forwarding headers, and stores it in the request's
//! extensions for throttling, cookies, CSRF origin checks and HSTS.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use lambda_http::request::RequestContext;

use crate::client_identity::{self, ClientContext, RequestOrigin};
use crate::state::AppState;

/// Middleware: resolves the client and stores it as a request extension.
pub async fn identify_client(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let context = client_of(&request, &state);
    request.extensions_mut().insert(context);
    next.run(request).await
}

fn client_of(request: &Request, state: &AppState) -> ClientContext {
    let headers = request.headers();
    let header_text = |name: &str| -> Vec<&str> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect()
    };
    let lambda_context = request.extensions().get::<RequestContext>();
    let gateway_source_ip = match lambda_context {
        Some(RequestContext::ApiGatewayV1(context)) => context.identity.source_ip.as_deref(),
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.as_deref(),
        _ => None,
    };
    let origin = RequestOrigin {
        peer: request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip()),
        gateway_source_ip,
        behind_aws_front: lambda_context.is_some(),
        forwarded_for: header_text("x-forwarded-for"),
        forwarded_proto: header_text("x-forwarded-proto").last().copied(),
    };
    let security = &state.settings().account_security;
    client_identity::resolve(
        &origin,
        &security.trusted_proxies,
        security.public_url_is_https(),
    )
}

/// The client of the request, as [`identify_client`] resolved it.
pub struct Client(pub ClientContext);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Client(
            parts
                .extensions
                .get::<ClientContext>()
                .cloned()
                .unwrap_or_default(),
        ))
    }
}
