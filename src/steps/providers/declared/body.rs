//! A declared kind's request from the rendered `with`: local files read and encoded as the
//! entry says (bare base64, data URI or multipart file part), fields moved to their body
//! keys, defaults filled in, `{name}` placeholders of the submit path taken from the body.

use base64::Engine as _;
use serde_json::{Map, Value as Json};

use crate::api::{FilePart, Payload};
use crate::catalog::{Entry, FieldDecl};
use crate::contract::{StepCtx, StepError};

/// The submit path and payload for one step.
pub(crate) fn build(
    ctx: &StepCtx,
    kind: &str,
    entry: &Entry,
    mut with: Map<String, Json>,
) -> Result<(String, Payload), StepError> {
    let mut body = Map::new();
    let mut files = Vec::new();
    for decl in &entry.fields {
        let Some(value) = with.remove(&decl.name) else { continue };
        place(ctx, decl, value, &mut body, &mut files)?;
    }
    // Unknown fields (`callback_url`, ...) pass through as given.
    body.extend(with);
    for (key, value) in &entry.defaults {
        if lookup_mut(&mut body, key).is_none() {
            insert(&mut body, key, value.clone());
        }
    }
    let path = fill_path(kind, &entry.task.submit.path, &mut body)?;
    if let Some(key) = &entry.nest {
        let inner = std::mem::take(&mut body);
        body.insert(key.clone(), Json::Object(inner));
    }
    let payload = if entry.task.multipart {
        let text = body.into_iter().flat_map(|(k, v)| form_values(k, v)).collect();
        Payload::Multipart { text, files }
    } else {
        Payload::Json(Json::Object(body))
    };
    Ok((path, payload))
}

fn place(
    ctx: &StepCtx,
    decl: &FieldDecl,
    value: Json,
    body: &mut Map<String, Json>,
    files: &mut Vec<FilePart>,
) -> Result<(), StepError> {
    let to = decl.to.clone().unwrap_or_else(|| decl.name.clone());
    let value = match value {
        Json::Number(n) if decl.stringify => Json::String(n.to_string()),
        other => other,
    };
    let Some(mode) = decl.file.as_deref() else {
        insert(body, &to, value);
        return Ok(());
    };
    let items = match &value {
        Json::Array(items) => items.clone(),
        one => vec![one.clone()],
    };
    let mut out = Vec::new();
    let mut is_url = false;
    for item in items {
        let Json::String(text) = item else {
            out.push(item);
            continue;
        };
        is_url = is_url_like(&text);
        if is_url {
            out.push(Json::String(text));
        } else if mode == "multipart" {
            let (bytes, name) = read(ctx, &decl.name, &text)?;
            files.push(FilePart { field: to.clone(), file_name: name, bytes });
        } else {
            out.push(Json::String(encode(ctx, &decl.name, &text, mode == "data_uri")?));
        }
    }
    if let Some(mark) = &decl.mark {
        insert(body, mark, Json::String(if is_url { "url" } else { "file" }.into()));
    }
    if out.is_empty() {
        return Ok(());
    }
    let mut out: Vec<Json> = match &decl.wrap {
        Some(key) => out.into_iter().map(|v| Json::Object(Map::from_iter([(key.clone(), v)]))).collect(),
        None => out,
    };
    let key = match (&decl.url_to, is_url) {
        (Some(url_to), true) => url_to.clone(),
        _ => to,
    };
    let value = if value.is_array() { Json::Array(out) } else { out.remove(0) };
    insert(body, &key, value);
    Ok(())
}

fn is_url_like(text: &str) -> bool {
    text.starts_with("http://") || text.starts_with("https://")
}

fn read(ctx: &StepCtx, field: &str, text: &str) -> Result<(Vec<u8>, String), StepError> {
    let path = ctx.resolve(text);
    let bytes = std::fs::read(&path).map_err(|e| {
        StepError::fatal(format!(
            "cannot read `{field}` file `{}`: {e}; give an existing file or an https URL",
            path.display()
        ))
    })?;
    let name = path.file_name().map_or_else(|| field.to_owned(), |n| n.to_string_lossy().into_owned());
    Ok((bytes, name))
}

/// A local file as base64, bare or as a data URI; given base64 or data URIs pass through.
pub(crate) fn encode(ctx: &StepCtx, field: &str, text: &str, data_uri: bool) -> Result<String, StepError> {
    if let Some(rest) = text.strip_prefix("data:") {
        return Ok(match rest.split_once(";base64,") {
            Some((_, data)) if !data_uri => data.to_owned(),
            _ => text.to_owned(),
        });
    }
    let (bytes, name) = match read(ctx, field, text) {
        Ok(found) => found,
        // Long text that is no file is taken as base64 already.
        Err(_) if text.len() > 256 => return Ok(text.to_owned()),
        Err(e) => return Err(e),
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    Ok(if data_uri { format!("data:{};base64,{b64}", mime(&name, &bytes)) } else { b64 })
}

/// The media type from the first bytes, else the file name's extension.
pub(crate) fn mime(name: &str, bytes: &[u8]) -> &'static str {
    match bytes {
        [0x89, b'P', b'N', b'G', ..] => return "image/png",
        [0xFF, 0xD8, ..] => return "image/jpeg",
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => return "image/webp",
        [b'G', b'I', b'F', ..] => return "image/gif",
        _ => {}
    }
    match name.rsplit('.').next().map(str::to_ascii_lowercase).as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("mp3") => "audio/mpeg",
        Some("wav") => "audio/wav",
        Some("mp4") => "video/mp4",
        _ => "image/png",
    }
}

/// Replaces `{name}` in `path` with the body's `name`, which leaves the body.
fn fill_path(kind: &str, path: &str, body: &mut Map<String, Json>) -> Result<String, StepError> {
    let mut out = path.to_owned();
    while let Some(start) = out.find('{') {
        let end = out[start..].find('}').map_or(out.len(), |e| start + e);
        let name = out[start + 1..end].to_owned();
        let value = body
            .remove(&name)
            .as_ref()
            .and_then(crate::catalog::scalar)
            .ok_or_else(|| StepError::fatal(format!("`{kind}` needs `{name}`; add it under `with:`")))?;
        out.replace_range(start..=end.min(out.len() - 1), &value);
    }
    Ok(out)
}

fn form_values(key: String, value: Json) -> Vec<(String, String)> {
    match value {
        Json::String(s) => vec![(key, s)],
        Json::Array(items) => items.into_iter().flat_map(|v| form_values(key.clone(), v)).collect(),
        Json::Null => Vec::new(),
        other => vec![(key, other.to_string())],
    }
}

/// Sets `a.b.c` in `body`, making maps on the way.
fn insert(body: &mut Map<String, Json>, key: &str, value: Json) {
    match key.split_once('.') {
        None => {
            body.insert(key.to_owned(), value);
        }
        Some((head, rest)) => {
            let slot = body.entry(head.to_owned()).or_insert_with(|| Json::Object(Map::new()));
            if !slot.is_object() {
                *slot = Json::Object(Map::new());
            }
            if let Json::Object(inner) = slot {
                insert(inner, rest, value);
            }
        }
    }
}

fn lookup_mut<'a>(body: &'a mut Map<String, Json>, key: &str) -> Option<&'a mut Json> {
    match key.split_once('.') {
        None => body.get_mut(key),
        Some((head, rest)) => match body.get_mut(head)? {
            Json::Object(inner) => lookup_mut(inner, rest),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_keys_nest_and_paths_take_their_fields() {
        let mut body = Map::new();
        insert(&mut body, "input.mode", json!("audio2video"));
        assert_eq!(Json::Object(body.clone()), json!({"input": {"mode": "audio2video"}}));
        body.insert("model".into(), json!("a/b"));
        let path = fill_path("k", "/replicate/v1/models/{model}/predictions", &mut body);
        assert_eq!(path.ok().as_deref(), Some("/replicate/v1/models/a/b/predictions"));
        assert!(!body.contains_key("model"));
    }
}
