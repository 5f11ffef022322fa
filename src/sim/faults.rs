//! The gate every request passes: statistics, latency, the key check and the injected
//! faults (429 with Retry-After, retryable 5xx, malformed JSON, an empty balance). Control routes
//! (`/_sim/stats`, `/_sim/reset`) pass untouched; downloads get latency only (their
//! fault, truncation, lives in `files`).
//!
//! A faulted request never reaches its handler, so it has no side effect: a 429 on a
//! submit means no task was created, and retrying it is safe.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::http::{authorized, comet_error, invalid_token};
use super::state::{Family, Sim};

pub(crate) async fn gate(State(sim): State<Arc<Sim>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let Some(family) = Family::classify(&path) else {
        return next.run(request).await;
    };
    let _in_flight = sim.begin_request(family);
    let request = if family == Family::Files {
        request
    } else {
        let (request, entry) = super::requests::capture(request).await;
        sim.log_request(entry);
        request
    };
    if !sim.config.latency.is_zero() {
        tokio::time::sleep(sim.config.latency).await;
    }
    if family == Family::Files {
        return next.run(request).await;
    }
    let query_key = (family == Family::Balance)
        .then(|| query_param(request.uri().query().unwrap_or_default(), "key"))
        .flatten();
    if !authorized(&sim, request.headers(), query_key.as_deref()) {
        return invalid_token();
    }
    if sim.config.faults.quota_exhausted && family != Family::Balance {
        sim.count_fault("quota_exhausted");
        // What the gateway answers an account with no balance left.
        let (status, code) = (StatusCode::FORBIDDEN, "insufficient_user_quota");
        return comet_error(status, code, "user quota is not enough, please top up");
    }
    let n = sim.next_api_request();
    if let Some(response) = injected_fault(&sim, n, &path) {
        return response;
    }
    let task_submit = request.method() == axum::http::Method::POST
        && matches!(
            family,
            Family::Suno | Family::Kling | Family::Midjourney | Family::Videos | Family::Other
        );
    let response = next.run(request).await;
    if sim.config.faults.hang_submits && task_submit && response.status().is_success() {
        // The task exists (and would be charged), but its id never reaches the client.
        sim.count_fault("hung_submits");
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
    response
}

fn every(n: u64, every: u64) -> bool {
    every > 0 && n % every == 0
}

/// The fault for the `n`th API request, if any; rate limits win over server errors,
/// which win over malformed bodies.
fn injected_fault(sim: &Sim, n: u64, path: &str) -> Option<Response> {
    let faults = &sim.config.faults;
    if every(n, faults.rate_limit_every) {
        tracing::debug!(request = n, path, "sim fault: 429 rate limit");
        sim.count_fault("rate_limited");
        let mut response = comet_error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            "rate limit exceeded, please retry later",
        );
        response.headers_mut().insert(header::RETRY_AFTER, faults.retry_after.into());
        return Some(response);
    }
    if every(n, faults.server_error_every) {
        sim.count_fault("server_errors");
        // Both are retryable per CometAPI's table: neither is invalid_request nor model_not_found.
        let response = if sim.next_server_error() % 2 == 1 {
            tracing::debug!(request = n, path, "sim fault: 500");
            comet_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "bad_response_status_code",
                "bad response status code 500, model is currently busy",
            )
        } else {
            tracing::debug!(request = n, path, "sim fault: 503");
            comet_error(StatusCode::SERVICE_UNAVAILABLE, "", "当前分组上游负载已饱和，请稍后再试")
        };
        return Some(response);
    }
    if every(n, faults.malformed_every) {
        tracing::debug!(request = n, path, "sim fault: malformed JSON");
        sim.count_fault("malformed");
        let truncated = r#"{"code":"success","message":"","data":{"task_id":"sim-trunc"#;
        return Some(([(header::CONTENT_TYPE, "application/json")], truncated).into_response());
    }
    None
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nth_counts_from_one_and_zero_means_never() {
        assert!(!every(1, 3) && !every(2, 3) && every(3, 3) && every(6, 3));
        assert!(!every(5, 0));
    }

    #[test]
    fn query_params_are_found_by_name() {
        assert_eq!(query_param("a=1&key=sk-x", "key").as_deref(), Some("sk-x"));
        assert_eq!(query_param("a=1", "key"), None);
    }
}
