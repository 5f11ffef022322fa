//! `http`: any HTTP request. Not paid. The CometAPI key is added only when the URL is on
//! `COMETAPI_BASE_URL`'s host (a relative path counts as that host), never elsewhere.

use reqwest::Method;
use serde_json::{json, Map, Value as Json};

use super::{field, required_str, O, S};
use crate::api::{api, retry::Call};
use crate::steps::{FieldType, KindSpec, StepCtx, StepError};

pub(super) fn spec() -> KindSpec {
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].map(|m| json!(m));
    let all =
        [FieldType::String, FieldType::Integer, FieldType::Number, FieldType::Boolean, FieldType::List, O];
    KindSpec {
        name: "http".into(),
        summary: "Any HTTP request; fails on a 4xx/5xx answer.".into(),
        fields: vec![
            field("url", &[S], "a full URL, or a path on COMETAPI_BASE_URL's host").required(),
            field("method", &[S], "GET (default), POST, ...").values(&methods),
            field("headers", &[O], "extra request headers"),
            field("body", &[S], "a text body"),
            field("json", &all, "a JSON body"),
        ],
        open: false,
        outputs: [
            ("status", "the HTTP status"),
            ("headers", "the answer's headers"),
            ("body", "the answer as text"),
            ("json", "the answer parsed as JSON, or null"),
        ]
        .iter()
        .map(|(n, d)| ((*n).to_owned(), (*d).to_owned()))
        .collect(),
        dynamic_outputs: false,
        paid: false,
        idempotent: true,
    }
}

pub(super) async fn run(_ctx: &StepCtx, spec: &KindSpec, with: Map<String, Json>) -> Result<Json, StepError> {
    let api = api()?;
    let url = api.url(required_str(spec, &with, "url")?);
    let method_name = with.get("method").and_then(Json::as_str).unwrap_or("GET").to_ascii_uppercase();
    let method = Method::from_bytes(method_name.as_bytes()).map_err(|_| {
        StepError::fatal(format!("`{method_name}` is not an HTTP method; write e.g. `method: POST`"))
    })?;
    let call = if matches!(method, Method::GET | Method::HEAD) { Call::Read } else { Call::Submit };
    let key = if api.is_comet(&url) { api.endpoint.key.clone() } else { None };
    let headers: Map<String, Json> =
        with.get("headers").and_then(Json::as_object).cloned().unwrap_or_default();
    let what = format!("`{method} {}`", crate::api::path_of(&url));
    let reply = api
        .send_any(call, &what, || {
            let mut req = api.http.request(method.clone(), &url);
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
        return Err(StepError {
            message: format!("{what} answered HTTP {}; see the step's `body` output", reply.status.as_u16()),
            retryable: false,
            outputs: Some(outputs),
        });
    }
    Ok(outputs)
}
