//! `chat`: OpenAI chat completions. Outputs the reply `text`, its `json` when the reply
//! parses as JSON (also inside a ``` fence), `usage`, the resolved `model` and the `raw` answer.
//!
//! Hand-written because its behaviour is not a declared request: local image files in
//! messages are inlined as data URIs, a reply is read as a stream of events or at once, and
//! `json` is parsed out of free text. Fields and outputs are in the catalog.

mod stream;

use reqwest::Method;
use serde_json::{json, Map, Value as Json};

use super::{at, charged};
use crate::api::retry::Call;
use crate::api::Api;
use crate::contract::{KindSpec, StepCtx, StepError};

pub(super) use stream::{progress_every, tail};

pub(super) async fn run(
    api: &Api,
    ctx: &StepCtx,
    _spec: &KindSpec,
    mut body: Map<String, Json>,
) -> Result<Json, StepError> {
    if let Some(Json::Array(messages)) = body.get_mut("messages") {
        for message in messages {
            inline_images(ctx, message)?;
        }
    }
    let raw = if stream::wanted(&body) {
        stream::call(api, ctx, body).await?
    } else {
        body.insert("stream".into(), json!(false));
        charged(api, ctx)?;
        api.json(Call::Submit, Method::POST, "/v1/chat/completions", Some(&Json::Object(body))).await?
    };
    let text = reply_text(&raw);
    Ok(json!({
        "text": text,
        "json": parse_json(&text),
        "usage": at(&raw, "usage"),
        "model": at(&raw, "model"),
        "raw": raw,
    }))
}

/// Vision: an `image_url` part naming a local file becomes a data URL (URLs stay as they
/// are); `{type: image, image: path}` is accepted as a shorthand for the same part.
fn inline_images(ctx: &StepCtx, message: &mut Json) -> Result<(), StepError> {
    let Some(parts) = message.get_mut("content").and_then(Json::as_array_mut) else { return Ok(()) };
    for part in parts {
        let local = match (&part["type"], &part["image_url"], &part["image"]) {
            (t, Json::String(u), _) if t == "image_url" => u.clone(),
            (t, Json::Object(o), _) if t == "image_url" => {
                o.get("url").and_then(Json::as_str).unwrap_or("").to_owned()
            }
            (t, _, Json::String(p)) if t == "image" => p.clone(),
            _ => continue,
        };
        let url =
            if local.starts_with("http://") || local.starts_with("https://") || local.starts_with("data:") {
                local
            } else {
                super::declared::encode(ctx, "image_url", &local, true)?
            };
        let detail = part["image_url"].get("detail").cloned();
        let mut image_url = json!({ "url": url });
        if let Some(d) = detail {
            image_url["detail"] = d;
        }
        *part = json!({ "type": "image_url", "image_url": image_url });
    }
    Ok(())
}

/// `choices[0].message.content`, a string or a list of text parts.
fn reply_text(raw: &Json) -> String {
    match at(raw, "choices.0.message.content") {
        Json::String(s) => s,
        Json::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join(""),
        _ => String::new(),
    }
}

/// The reply as JSON: whole, or the first ``` fenced block.
pub(crate) fn parse_json(text: &str) -> Json {
    let t = text.trim();
    if let Ok(v) = serde_json::from_str::<Json>(t) {
        if v.is_object() || v.is_array() {
            return v;
        }
    }
    let Some(start) = t.find("```") else { return Json::Null };
    let after = &t[start + 3..];
    let after = after.split_once('\n').map_or(after, |(lang, rest)| {
        if lang.trim().chars().all(char::is_alphanumeric) {
            rest
        } else {
            after
        }
    });
    let Some(end) = after.find("```") else { return Json::Null };
    serde_json::from_str(after[..end].trim()).unwrap_or(Json::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_found_whole_or_in_a_fence() {
        assert_eq!(parse_json(r#"{"a":1}"#), json!({"a":1}));
        assert_eq!(parse_json("Here:\n```json\n[1, 2]\n```\nbye"), json!([1, 2]));
        assert_eq!(parse_json("just words"), Json::Null);
        assert_eq!(parse_json("42"), Json::Null);
    }
}
