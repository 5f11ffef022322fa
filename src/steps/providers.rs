//! The CometAPI step kinds: each a `KindSpec` (fields, types, allowed values, outputs) and
//! a function that turns the rendered `with` into calls through `crate::api` and the
//! answer into outputs. All are `paid` (counted by `budget` and `--dry-run`) and not
//! `idempotent` (the engine's `retry:` must not resubmit a paid call), except `http`.
//!
//! They own request bodies and output shapes per kind; they must not talk HTTP
//! themselves (that is `api`) nor know about the engine beyond `StepCtx`.

mod chat;
mod comet_task;
mod declared;
mod http;
mod kling;
mod media;
mod midjourney;
mod realtime;
mod suno;
mod suno_timing;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{json, Map, Value as Json};

use super::{FieldSpec, FieldType, KindSpec, Registry, StepCtx, StepError, StepKind};
use crate::api::config::Secret;
use crate::api::{api, catalog, download, Api};

/// Runs one kind on its `with` as a map: the spec is passed so messages can name the kind.
type RunFn =
    for<'a> fn(&'a StepCtx, &'a KindSpec, Map<String, Json>) -> BoxFuture<'a, Result<Json, StepError>>;

/// A kind's `async fn(ctx, spec, with)` as a `RunFn`.
macro_rules! boxed {
    ($run:path) => {{
        let run: RunFn = |ctx, spec, with| Box::pin($run(ctx, spec, with));
        run
    }};
}

/// A kind as data plus its run function.
pub(crate) struct Provider {
    spec: KindSpec,
    run: RunFn,
}

impl StepKind for Provider {
    fn spec(&self) -> &KindSpec {
        &self.spec
    }

    fn execute<'a>(&'a self, ctx: &'a StepCtx, with: Json) -> BoxFuture<'a, Result<Json, StepError>> {
        match object(&self.spec, with) {
            Ok(with) => (self.run)(ctx, &self.spec, with),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
}

/// Adds every CometAPI kind to `registry`.
pub fn register(registry: &mut Registry) {
    let kinds: Vec<(KindSpec, RunFn)> = vec![
        (chat::spec(), boxed!(chat::run)),
        (suno::lyrics_spec(), boxed!(suno::lyrics)),
        (suno::music_spec(), boxed!(suno::music)),
        (suno_timing::spec(), boxed!(suno_timing::run)),
        (kling::spec("kling.text2video"), boxed!(kling::run)),
        (kling::spec("kling.image2video"), boxed!(kling::run)),
        (midjourney::imagine_spec(), boxed!(midjourney::imagine)),
        (midjourney::action_spec(), boxed!(midjourney::action)),
        (media::image_spec(), boxed!(media::image)),
        (media::speech_spec(), boxed!(media::speech)),
        (media::transcription_spec(), boxed!(media::transcription)),
        (comet_task::spec(), boxed!(comet_task::run)),
        (http::spec(), boxed!(http::run)),
    ];
    let declared = declared::specs().into_iter().map(|s| (s, boxed!(declared::run)));
    for (spec, run) in kinds.into_iter().chain(declared) {
        registry.add(Arc::new(Provider { spec, run }));
    }
    registry.add(Arc::new(realtime::Realtime::new()));
}

/// A paid, non-idempotent kind whose unknown fields pass through to the API.
pub(crate) fn paid(name: &str, summary: &str, fields: Vec<FieldSpec>, outputs: &[(&str, &str)]) -> KindSpec {
    KindSpec {
        name: name.into(),
        summary: summary.into(),
        fields,
        open: true,
        outputs: outputs.iter().map(|(n, d)| ((*n).to_owned(), (*d).to_owned())).collect(),
        dynamic_outputs: false,
        paid: true,
        idempotent: false,
    }
}

pub(crate) fn field(name: &str, types: &[FieldType], description: &str) -> FieldSpec {
    FieldSpec::new(name, types, description)
}

pub(crate) use FieldType::{Boolean as B, Integer as I, List as L, Number as N, Object as O, String as S};

/// The rendered `with` as a map, or a message naming the kind.
pub(crate) fn object(spec: &KindSpec, with: Json) -> Result<Map<String, Json>, StepError> {
    match with {
        Json::Object(m) => Ok(m),
        Json::Null => Ok(Map::new()),
        other => Err(StepError::fatal(format!(
            "`with` of a `{}` step must be a map of fields, got {other}; see `cometflow kinds {}`",
            spec.name, spec.name
        ))),
    }
}

/// A required string field, or a message naming it.
pub(crate) fn required_str<'a>(
    spec: &KindSpec,
    with: &'a Map<String, Json>,
    name: &str,
) -> Result<&'a str, StepError> {
    with.get(name).and_then(Json::as_str).filter(|s| !s.trim().is_empty()).ok_or_else(|| {
        StepError::fatal(format!("`{}` needs `{name}` (a non-empty string); add it under `with:`", spec.name))
    })
}

/// A number the answer gave as text (`"5.2"`) as a number; text that is none becomes null.
pub(crate) fn number(v: Json) -> Json {
    match v {
        Json::String(s) => s.parse::<f64>().map_or(Json::Null, |d| json!(d)),
        other => other,
    }
}

/// The value at a dotted path of a JSON answer, or null.
pub(crate) fn at(json: &Json, path: &str) -> Json {
    crate::api::catalog::pick(json, path).cloned().unwrap_or(Json::Null)
}

/// The catalog's task for a kind; every kind that asks has one, so a miss is a cometflow bug.
pub(crate) fn task_of(spec: &KindSpec) -> Result<&'static catalog::TaskSpec, StepError> {
    catalog::get(&spec.name).ok_or_else(|| no_entry(spec))
}

/// The catalog's whole entry for a declared kind (a miss is a cometflow bug, as above).
pub(crate) fn entry_of(spec: &KindSpec) -> Result<&'static catalog::Entry, StepError> {
    catalog::entry(&spec.name).ok_or_else(|| no_entry(spec))
}

fn no_entry(spec: &KindSpec) -> StepError {
    StepError::fatal(format!("no catalog entry for `{}`; this is a cometflow bug", spec.name))
}

/// The client and its key, checked before any request.
pub(crate) fn keyed_api() -> Result<(&'static Api, &'static Secret), StepError> {
    let api = api()?;
    Ok((api, api.key()?))
}

/// As `keyed_api`, for a paid call: it is counted against `budget` before it is made.
pub(crate) fn charged_api(ctx: &StepCtx) -> Result<(&'static Api, &'static Secret), StepError> {
    let keyed = keyed_api()?;
    ctx.charge_call()?;
    Ok(keyed)
}

/// Downloads a result URL into the step folder as `stem.<ext>`; the local path.
pub(crate) async fn save(ctx: &StepCtx, url: &str, stem: &str) -> Result<String, StepError> {
    Ok(download::fetch(ctx.dir()?, url, stem).await?.display().to_string())
}

/// The outputs `<name>` (the file downloaded from `url`, or null when `url` is no string)
/// and `<name>_url` (`url` itself), in that order.
pub(crate) async fn url_outputs(
    ctx: &StepCtx,
    name: &str,
    url: &Json,
) -> Result<Map<String, Json>, StepError> {
    let path = match url.as_str() {
        Some(u) => Json::String(save(ctx, u, name).await?),
        None => Json::Null,
    };
    let mut out = Map::new();
    out.insert(name.to_owned(), path);
    out.insert(format!("{name}_url"), url.clone());
    Ok(out)
}
