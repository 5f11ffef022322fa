//! Turning CometAPI's failure answers into plain messages: the gateway envelope
//! `{"error":{message,type,code}}` and each family's own (Kling `code != 0`, Midjourney
//! `code != 1`, Suno `code != "success"`). The request id inside a message is kept.
//!
//! It owns the wording; it must not decide whether to retry (that is `retry`).

use reqwest::StatusCode;
use serde_json::Value as Json;

/// What a failure answer said, read leniently.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Said {
    /// `error.code`, or a family envelope's `code` as text.
    pub code: String,
    pub message: String,
    /// The gateway's `{"error":{...}}` envelope: the gateway itself refused the request.
    pub gateway: bool,
}

/// Reads the envelope of a failure answer, if its body is JSON.
pub(crate) fn read(body: &[u8]) -> Option<Said> {
    let json: Json = serde_json::from_slice(body).ok()?;
    if let Some(err) = json.get("error").filter(|e| e.is_object()) {
        return Some(Said { code: text(&err["code"]), message: text(&err["message"]), gateway: true });
    }
    if let Some(err) = json.get("error").and_then(Json::as_str) {
        return Some(Said { code: String::new(), message: err.to_owned(), gateway: true });
    }
    let message = ["message", "description", "msg", "detail"]
        .iter()
        .map(|k| text(&json[*k]))
        .find(|m| !m.is_empty())
        .unwrap_or_default();
    let code = text(&json["code"]);
    (!code.is_empty() || !message.is_empty()).then_some(Said { code, message, gateway: false })
}

pub(crate) fn text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// The message for a failed HTTP answer to `what` (e.g. "`POST /suno/submit/music`").
pub(crate) fn describe(status: StatusCode, body: &[u8], what: &str) -> String {
    let said = read(body);
    let message = said.as_ref().map(|s| s.message.as_str()).unwrap_or_default();
    let code = said.as_ref().map(|s| s.code.as_str()).unwrap_or_default();
    let lower = message.to_ascii_lowercase();
    if status == StatusCode::UNAUTHORIZED || lower.contains("invalid token") {
        let detail = if message.is_empty() { String::new() } else { format!(" ({message})") };
        return format!("CometAPI rejected the key (invalid token): check COMETAPI_KEY{detail}");
    }
    if code == "model_not_found"
        || lower.contains("no available channel for group") && lower.contains(" model ")
    {
        let model = model_named(message).unwrap_or("the requested model");
        return format!(
            "model `{model}` does not exist on CometAPI or has no channel for your key ({message}): \
             check the `model` name at https://api.cometapi.com/api/models"
        );
    }
    if status == StatusCode::PAYMENT_REQUIRED
        || ["quota", "insufficient", "credit", "balance", "余额"].iter().any(|w| lower.contains(w))
    {
        return format!(
            "CometAPI refused {what} for lack of credit: {}; top up the account or use another key",
            if message.is_empty() { status.to_string() } else { message.to_owned() }
        );
    }
    let said = if message.is_empty() {
        snippet(body)
    } else if code.is_empty() {
        message.to_owned()
    } else {
        format!("{message} [{code}]")
    };
    let hint = match status.as_u16() {
        _ if code == "invalid_request" => "fix the step's `with` fields",
        400 | 422 => "fix the step's `with` fields",
        403 => "check that your key may use this model, and remove unsupported fields",
        404 | 301 | 302 => "check COMETAPI_BASE_URL (it should be the host, e.g. https://api.cometapi.com)",
        429 => "lower the pipeline's `limits`/`concurrency` or try again later",
        _ if status.is_server_error() => "CometAPI or the upstream is failing; try again later",
        _ => "see the message above",
    };
    format!("{what} failed with HTTP {}: {said}; {hint}", status.as_u16())
}

/// The model in "no available channel for group default and model X (distributor)".
fn model_named(message: &str) -> Option<&str> {
    let rest = &message[message.find("and model ")? + "and model ".len()..];
    let model = rest.split(" (").next()?.trim();
    (!model.is_empty()).then_some(model)
}

/// The start of a body that is not a known envelope (HTML from a wrong path, plain text).
pub(crate) fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    if s.is_empty() {
        return "(empty body)".into();
    }
    let cut: String = s.chars().take(300).collect();
    if cut.len() < s.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_model_is_named() {
        let body = br#"{"error":{"code":"model_not_found","message":"no available channel for group default and model gpt-9 (distributor) (request id: 42X)","type":"comet_api_error"}}"#;
        let m = describe(StatusCode::SERVICE_UNAVAILABLE, body, "`POST /v1/chat/completions`");
        assert!(m.starts_with("model `gpt-9` does not exist"), "{m}");
        assert!(m.contains("request id: 42X"), "{m}");
    }

    #[test]
    fn a_bad_key_says_which_variable_to_check() {
        let body =
            br#"{"error":{"code":"","message":"invalid token (request id: 1)","type":"comet_api_error"}}"#;
        let m = describe(StatusCode::UNAUTHORIZED, body, "x");
        assert!(m.starts_with("CometAPI rejected the key (invalid token): check COMETAPI_KEY"), "{m}");
    }

    #[test]
    fn quota_errors_say_to_top_up() {
        let body = br#"{"error":{"code":"insufficient_user_quota","message":"user quota is not enough (request id: 7)","type":"comet_api_error"}}"#;
        let m = describe(StatusCode::FORBIDDEN, body, "`POST /suno/submit/music`");
        assert!(
            m.contains("lack of credit") && m.contains("request id: 7") && m.ends_with("use another key"),
            "{m}"
        );
    }

    #[test]
    fn other_errors_keep_the_message_code_and_a_hint() {
        let body = br#"{"error":{"code":"invalid_request","message":"field messages is required (request id: 9)","type":"comet_api_error"}}"#;
        let m = describe(StatusCode::INTERNAL_SERVER_ERROR, body, "`POST /v1/chat/completions`");
        assert!(m.contains("HTTP 500: field messages is required (request id: 9) [invalid_request]"), "{m}");
    }

    #[test]
    fn family_envelopes_are_read() {
        let kling = read(br#"{"code":1201,"message":"prompt is required","data":null}"#).unwrap();
        assert_eq!(
            (kling.code.as_str(), kling.message.as_str(), kling.gateway),
            ("1201", "prompt is required", false)
        );
        let mj = read(br#"{"code":4,"description":"bad","result":null}"#).unwrap();
        assert_eq!(mj.message, "bad");
    }
}
