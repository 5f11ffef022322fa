//! The request log of `/_sim/stats` (`requests_log`): each API request's method, path, the
//! headers that shape it (never the key), and its JSON body (long strings cut, so base64
//! shows its prefix) or its multipart field names, so tests can check a kind's request.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use serde_json::{json, Value};

/// The most requests kept; later ones are dropped, not rotated, so a test sees the first.
pub(crate) const CAP: usize = 500;

/// Headers worth asserting; authorization and `x-api-key` are never recorded.
const SHOWN: &[&str] = &["content-type", "x-runway-version", "anthropic-version"];

/// Reads `request`'s body to log it; returns the request, whole again, and its log entry.
pub(crate) async fn capture(request: Request) -> (Request, Value) {
    let (parts, body) = request.into_parts();
    // Bodies over the router's limit are refused there anyway; here they are just not logged.
    let bytes = axum::body::to_bytes(body, super::BODY_LIMIT).await.unwrap_or_default();
    let mut headers = serde_json::Map::new();
    for name in SHOWN {
        if let Some(v) = parts.headers.get(*name).and_then(|v| v.to_str().ok()) {
            // A multipart boundary is random; only the type is worth comparing.
            let v = v.split(';').next().unwrap_or(v).trim();
            headers.insert((*name).to_owned(), json!(v));
        }
    }
    let content_type =
        parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut entry = json!({"method": parts.method.as_str(), "path": parts.uri.path(),
                           "query": parts.uri.query().map(redact_query), "headers": headers});
    if content_type.starts_with("multipart/") {
        entry["fields"] = json!(multipart_names(&bytes));
    } else if !bytes.is_empty() {
        entry["body"] = serde_json::from_slice::<Value>(&bytes).map_or(Value::Null, cut);
    }
    (Request::from_parts(parts, Body::from(bytes)), entry)
}

/// `key=…` in a query string (the balance route) becomes `key=***`.
fn redact_query(query: &str) -> String {
    let pairs: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some(("key", _)) => "key=***".to_owned(),
            _ => p.to_owned(),
        })
        .collect();
    pairs.join("&")
}

/// Strings longer than 80 characters keep their first 40 and their length.
fn cut(value: Value) -> Value {
    match value {
        Value::String(s) if s.len() > 80 => {
            let head: String = s.chars().take(40).collect();
            json!(format!("{head}…({} chars)", s.len()))
        }
        Value::Array(items) => Value::Array(items.into_iter().map(cut).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, cut(v))).collect()),
        other => other,
    }
}

/// Each part's `name`, in order; a file part is `name (file)`.
fn multipart_names(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
        .filter_map(|l| {
            let name = l.split("name=\"").nth(1)?.split('"').next()?;
            Some(if l.contains("filename=") { format!("{name} (file)") } else { name.to_owned() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_names_mark_files_and_long_strings_are_cut() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nhi\r\n--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\nPNG\r\n--b--\r\n";
        assert_eq!(multipart_names(body), ["prompt", "image (file)"]);
        let long = "x".repeat(100);
        assert_eq!(cut(json!({"a": [long]})), json!({"a": [format!("{}…(100 chars)", "x".repeat(40))]}));
        assert_eq!(redact_query("key=sk-1&start_date=x"), "key=***&start_date=x");
    }
}
