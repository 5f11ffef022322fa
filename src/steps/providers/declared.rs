//! Kinds declared wholly in `catalog.yaml`: their `with` fields, body mapping and outputs
//! are data, and one run function serves them all: build the request (`body`), run it
//! through the task driver (synchronous when the entry has no `fetch`), then read the
//! declared outputs, downloading file outputs (URLs, data URIs or bare base64) into the
//! step folder.
//!
//! It owns the mapping from an entry to a `KindSpec` and to outputs; it must not know any
//! family by name.

mod body;

use base64::Engine as _;
use serde_json::{json, Map, Value as Json};

use super::entry_of;
use crate::api::Api;
use crate::api::{download, retry::Call, task};
use crate::catalog::{self, OutputDecl};
use crate::contract::{KindSpec, StepCtx, StepError};

pub(crate) use body::{encode, mime};

pub(super) async fn run(
    api: &Api,
    ctx: &StepCtx,
    spec: &KindSpec,
    with: Map<String, Json>,
) -> Result<Json, StepError> {
    let entry = entry_of(spec)?;
    let (path, payload) = body::build(ctx, &spec.name, entry, with)?;
    let done = task::run_with(api, ctx, &entry.task, &path, &payload).await?;
    let mut out = Map::new();
    for decl in &entry.outputs {
        output(api, ctx, &spec.name, decl, &done, &mut out).await?;
    }
    if entry.task.fetch.is_some() {
        out.insert("task_id".into(), json!(done.task_id));
    }
    out.insert("raw".into(), done.result);
    Ok(Json::Object(out))
}

async fn output(
    api: &Api,
    ctx: &StepCtx,
    kind: &str,
    decl: &OutputDecl,
    done: &task::Finished,
    out: &mut Map<String, Json>,
) -> Result<(), StepError> {
    let found = catalog::pick_all(&done.result, &decl.path);
    if let (true, Some(path), Some(stem)) = (found.is_empty(), &decl.content, &decl.file) {
        if !done.task_id.is_empty() {
            let file = content(api, ctx, &path.replace("{id}", &done.task_id), stem).await?;
            out.insert(decl.name.clone(), json!(file));
            out.insert(decl.url_name(), Json::Null);
            return Ok(());
        }
    }
    if found.is_empty() && !decl.optional {
        return Err(StepError::fatal(format!(
            "`{kind}` finished without `{}` (looked at `{}`); run the step again, and report it if it persists",
            decl.name, decl.path
        )));
    }
    let Some(stem) = &decl.file else {
        let read = |v: &Json| if decl.number { super::number(v.clone()) } else { v.clone() };
        let value = if decl.list {
            Json::Array(found.into_iter().map(read).collect())
        } else {
            found.first().map_or(Json::Null, |v| read(v))
        };
        out.insert(decl.name.clone(), value);
        return Ok(());
    };
    let mut paths = Vec::new();
    let mut urls = Vec::new();
    let many = found.len() > 1 || decl.list;
    for (i, value) in found.iter().enumerate() {
        let Some(text) = value.as_str() else { continue };
        let stem = if many { format!("{stem}-{}", i + 1) } else { stem.clone() };
        let path = save(api, ctx, kind, &stem, text).await?;
        paths.push(json!(path));
        urls.push(if text.starts_with("http") { json!(text) } else { Json::Null });
    }
    let (paths, urls) = if decl.list {
        (Json::Array(paths), Json::Array(urls))
    } else {
        (paths.into_iter().next().unwrap_or(Json::Null), urls.into_iter().next().unwrap_or(Json::Null))
    };
    out.insert(decl.name.clone(), paths);
    out.insert(decl.url_name(), urls);
    Ok(())
}

/// A file the API serves itself (`GET /v1/videos/{id}/content`), read with the key: the
/// path is always on the configured host, never a URL the answer named.
async fn content(api: &Api, ctx: &StepCtx, path: &str, stem: &str) -> Result<String, StepError> {
    if !path.starts_with('/') || path.starts_with("//") {
        return Err(StepError::fatal(format!(
            "`{path}` is not a path on the API's host; this is a cometflow bug"
        )));
    }
    let key = api.key()?;
    let http = api.http()?;
    let url = api.url(path);
    let what = format!("`GET {}`", crate::api::path_of(&url));
    let reply = api.send(Call::Read, &what, || http.get(&url).bearer_auth(key.expose())).await?;
    let content_type =
        reply.headers.get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let ext = download::extension("", content_type).replace("bin", "mp4");
    let path = super::media::write_file(ctx.dir()?, &format!("{stem}.{ext}"), &reply.body)?;
    Ok(path.display().to_string())
}

/// A URL downloaded, a data URI or bare base64 decoded; the local path.
async fn save(api: &Api, ctx: &StepCtx, kind: &str, stem: &str, text: &str) -> Result<String, StepError> {
    let dir = ctx.dir()?;
    if text.starts_with("http://") || text.starts_with("https://") {
        return Ok(download::fetch(api, dir, text, stem).await?.display().to_string());
    }
    let data = text.split_once(";base64,").map_or(text, |(_, d)| d);
    let bytes = base64::engine::general_purpose::STANDARD.decode(data.trim()).map_err(|e| {
        StepError::fatal(format!(
            "`{kind}` gave `{stem}` as neither a URL nor base64 ({e}); run the step again"
        ))
    })?;
    let ext = match mime("", &bytes) {
        "image/jpeg" => "jpg",
        "image/webp" => "webp",
        "image/gif" => "gif",
        _ if bytes.starts_with(b"ID3") => "mp3",
        _ => "png",
    };
    let path = super::media::write_file(dir, &format!("{stem}.{ext}"), &bytes)?;
    Ok(path.display().to_string())
}
