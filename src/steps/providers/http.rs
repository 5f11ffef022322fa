//! `http`: any HTTP request. Not paid. The CometAPI key is added only when the URL is on
//! `COMETAPI_BASE_URL`'s origin (same scheme, host and port; a relative path counts as that
//! origin), never elsewhere.
//!
//! Hand-written because any request is allowed: the URL, method and body are the step's.

use reqwest::Method;
use serde_json::{json, Map, Value as Json};

use super::required_str;
use crate::api::retry::Call;
use crate::api::Api;
use crate::contract::{KindSpec, StepCtx, StepError};

pub(super) async fn run(
    api: &Api,
    _ctx: &StepCtx,
    spec: &KindSpec,
    with: Map<String, Json>,
) -> Result<Json, StepError> {
    let url = api.url(required_str(spec, &with, "url")?);
    let method_name = with.get("method").and_then(Json::as_str).unwrap_or("GET").to_ascii_uppercase();
    let method = Method::from_bytes(method_name.as_bytes()).map_err(|_| {
        StepError::fatal(format!("`{method_name}` is not an HTTP method; write e.g. `method: POST`"))
    })?;
    let call = if matches!(method, Method::GET | Method::HEAD) { Call::Read } else { Call::Submit };
    let key = if api.is_comet(&url) { api.endpoint.key.clone() } else { None };
    // With the key, the client that never follows a redirect off CometAPI's origin.
    let http = if key.is_some() { api.http()? } else { api.plain_http()? };
    let headers: Map<String, Json> =
        with.get("headers").and_then(Json::as_object).cloned().unwrap_or_default();
    let what = format!("`{method} {}`", crate::api::path_of(&url));
    let reply = api
        .send_any(call, &what, || {
            let mut req = http.request(method.clone(), &url);
            if let Some(k) = &key {
                req = req.bearer_auth(k.expose());
            }
            for (k, v) in &headers {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                req = req.header(k.as_str(), v);
            }
            if let Some(j) = with.get("json") {
                req = req.json(j);
            } else if let Some(b) = with.get("body") {
                req = req.body(b.as_str().map_or_else(|| b.to_string(), str::to_owned));
            }
            req
        })
        .await?;
    let headers: Map<String, Json> = reply
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), json!(String::from_utf8_lossy(v.as_bytes()))))
        .collect();
    let body = api.redact(&String::from_utf8_lossy(&reply.body));
    let parsed = serde_json::from_str::<Json>(&body).unwrap_or(Json::Null);
    let outputs =
        json!({ "status": reply.status.as_u16(), "headers": headers, "body": body, "json": parsed });
    if reply.status.is_client_error() || reply.status.is_server_error() {
        return Err(StepError::fatal(format!(
            "{what} answered HTTP {}; see the step's `body` output",
            reply.status.as_u16()
        ))
        .with_outputs(outputs));
    }
    Ok(outputs)
}
