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
    // Before the key check: some routes answer an empty balance with 401.
    if is_quota(status, said.as_ref()) {
        let detail = if message.is_empty() { status.to_string() } else { message.to_owned() };
        return format!(
            "your CometAPI balance is used up: {what} was refused ({detail}); top up at \
             {TOP_UP} (`cometflow balance` shows what is left), or use `--simulate` to try the \
             pipeline without spending"
        );
    }
    if status == StatusCode::UNAUTHORIZED || lower.contains("invalid token") {
        let detail = if message.is_empty() { "invalid token" } else { message };
        return format!(
            "CometAPI rejected the key ({detail}): check `COMETAPI_KEY` (copy the key \
             again from your CometAPI account, e.g. `export COMETAPI_KEY=sk-...`), or use `--simulate` \
             to run without one"
        );
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

/// Where an account is topped up.
const TOP_UP: &str = "https://www.cometapi.com";

/// Words in the gateway's answers to an account without balance ("insufficient user
/// quota", "quota exhausted", "余额不足", "额度已用尽", ...). A rate limit never says them.
const QUOTA_WORDS: &[&str] =
    &["quota", "insufficient", "credit", "balance", "top up", "余额", "额度", "欠费"];

/// True when the answer says the account's balance is used up: final, not worth a retry.
pub(crate) fn is_quota(status: StatusCode, said: Option<&Said>) -> bool {
    if status == StatusCode::PAYMENT_REQUIRED {
        return true;
    }
    let Some(said) = said else { return false };
    let text = format!("{} {}", said.code, said.message).to_lowercase();
    // "exceeded your current quota" from OpenAI-style upstreams counts; a per-minute
    // "rate limit" without these words does not.
    QUOTA_WORDS.iter().any(|w| text.contains(w))
}

/// The message for a request that got no answer at all because the host could not be
/// reached (connection refused, DNS failure, connect timeout).
pub(crate) fn unreachable(what: &str, base: &str, cause: &str) -> String {
    let host = super::config::host_of(base).unwrap_or_else(|| base.to_owned());
    let lower = cause.to_ascii_lowercase();
    let why = if lower.contains("dns") || lower.contains("lookup") || lower.contains("resolve") {
        format!("the name `{host}` does not resolve")
    } else if lower.contains("refused") {
        format!("`{host}` refused the connection")
    } else if lower.contains("timed out") || lower.contains("timeout") {
        format!("`{host}` did not answer in time")
    } else {
        format!("`{host}` could not be reached")
    };
    format!(
        "cannot reach CometAPI for {what}: {why} ({cause}); you may be offline, CometAPI may be \
         down, or `COMETAPI_BASE_URL` (now `{base}`) is wrong: check your network and the variable \
         (unset it for https://api.cometapi.com), or use `--simulate` to run offline"
    )
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
        assert!(
            m.starts_with("CometAPI rejected the key (invalid token (request id: 1)): check `COMETAPI_KEY`"),
            "{m}"
        );
        assert!(m.ends_with("or use `--simulate` to run without one"), "{m}");
    }

    #[test]
    fn quota_errors_say_to_top_up() {
        let body = br#"{"error":{"code":"insufficient_user_quota","message":"user quota is not enough (request id: 7)","type":"comet_api_error"}}"#;
        let m = describe(StatusCode::FORBIDDEN, body, "`POST /suno/submit/music`");
        assert!(
            m.starts_with("your CometAPI balance is used up: `POST /suno/submit/music` was refused"),
            "{m}"
        );
        assert!(
            m.contains("request id: 7") && m.contains("top up at https://") && m.contains("`--simulate`"),
            "{m}"
        );
        for body in [
            r#"{"error":{"code":"","message":"quota exhausted","type":"comet_api_error"}}"#,
            r#"{"error":{"code":"","message":"余额不足","type":"comet_api_error"}}"#,
            r#"{"error":{"code":"insufficient_quota","message":"You exceeded your current quota"}}"#,
        ] {
            let said = read(body.as_bytes());
            assert!(is_quota(StatusCode::TOO_MANY_REQUESTS, said.as_ref()), "{body}");
        }
        let body = br#"{"error":{"code":"insufficient_user_quota","message":"user quota is not enough"}}"#;
        let m = describe(StatusCode::UNAUTHORIZED, body, "x");
        assert!(m.starts_with("your CometAPI balance is used up"), "{m}");
        let limit = read(br#"{"error":{"code":"rate_limit_exceeded","message":"rate limit exceeded"}}"#);
        assert!(!is_quota(StatusCode::TOO_MANY_REQUESTS, limit.as_ref()));
    }

    #[test]
    fn an_unreachable_host_is_named_with_what_to_check() {
        let m = unreachable(
            "`POST /v1/chat/completions`",
            "http://127.0.0.1:9",
            "tcp connect error: Connection refused",
        );
        assert!(
            m.starts_with(
                "cannot reach CometAPI for `POST /v1/chat/completions`: `127.0.0.1:9` refused the connection"
            ),
            "{m}"
        );
        assert!(m.contains("`COMETAPI_BASE_URL` (now `http://127.0.0.1:9`) is wrong"), "{m}");
        let m =
            unreachable("x", "https://api.cometapi.test", "dns error: failed to lookup address information");
        assert!(m.contains("the name `api.cometapi.test` does not resolve"), "{m}");
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
