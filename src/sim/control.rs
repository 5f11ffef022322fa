//! Routes that are not CometAPI's API proper: the simulator's own control routes
//! (no key, never faulted) and the balance query that really lives on another host.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::http::json_response;
use super::state::Sim;

/// `GET /_sim/stats`: per-family counts, every submitted task, injected faults.
pub(crate) async fn stats(State(sim): State<Arc<Sim>>) -> Response {
    json_response(StatusCode::OK, sim.stats_json())
}

/// `POST /_sim/reset`: clears statistics and fault counters (tasks stay pollable).
pub(crate) async fn reset(State(sim): State<Arc<Sim>>) -> Response {
    sim.reset();
    json_response(StatusCode::OK, json!({"reset": true}))
}

/// `GET /user/quota?key=…`: the balance shape of `query.cometapi.com` (key checked by the
/// gate); an empty account under the `quota_exhausted` switch.
pub(crate) async fn quota(State(sim): State<Arc<Sim>>) -> Response {
    let (total, remain) = if sim.config.faults.quota_exhausted { (0.0, 0.0) } else { (100.0, -1.0) };
    json_response(
        StatusCode::OK,
        json!({
            "username": "sim_user",
            "total_quota": total,
            "total_used_quota": 0.5,
            "request_count": 42,
            "keys": [{"name": "sim_key", "remain_quota": remain, "used_quota": 0.5}],
        }),
    )
}

/// Unknown paths: the gateway answers 404 without a JSON body.
pub(crate) async fn not_found() -> Response {
    let mut response = Response::new("404 page not found".into());
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}
