//! The CometAPI step kinds. Every one is described by its catalog entry (`crate::catalog`):
//! fields, outputs, family, paid or free. Most run wholly from that entry (`declared`); the
//! few whose requests or outputs cannot be declared name their code with `code:`, one file
//! each here, and say at the top why they need it.
//!
//! They own request bodies and output shapes per kind; they must not talk HTTP
//! themselves (that is `api`) nor know about the engine beyond the step contract.

mod chat;
mod comet_task;
mod declared;
mod http;
mod media;
mod midjourney;
mod realtime;
mod suno;
mod suno_timing;

use std::sync::Arc;

use futures::future::BoxFuture;
use indexmap::IndexMap;
use serde_json::{json, Map, Value as Json};

use super::{Kind, Problem};
use crate::api::config::Secret;
use crate::api::{download, Api};
use crate::catalog;
use crate::contract::{KindSpec, StepCtx, StepError, StepKind};
use crate::template::Tmpl;

/// Runs one kind on its `with` as a map, through the client it was given; the spec is
/// passed so messages can name the kind.
type RunFn = for<'a> fn(
    &'a Api,
    &'a StepCtx,
    &'a KindSpec,
    Map<String, Json>,
) -> BoxFuture<'a, Result<Json, StepError>>;

/// A kind's `async fn(api, ctx, spec, with)` as a `RunFn`.
macro_rules! boxed {
    ($run:path) => {{
        let run: RunFn = |api, ctx, spec, with| Box::pin($run(api, ctx, spec, with));
        run
    }};
}

/// A load-time check beyond the field list (see `Kind::check`).
type CheckFn = fn(&Tmpl) -> Vec<Problem>;

/// A kind as data plus its run function and client.
pub(crate) struct Provider {
    spec: KindSpec,
    run: RunFn,
    check: Option<CheckFn>,
    api: Arc<Api>,
}

impl Kind for Provider {
    fn check(&self, with: &Tmpl) -> Vec<Problem> {
        self.check.map_or_else(Vec::new, |check| check(with))
    }
}

impl StepKind for Provider {
    fn spec(&self) -> &KindSpec {
        &self.spec
    }

    fn execute<'a>(&'a self, ctx: &'a StepCtx, with: Json) -> BoxFuture<'a, Result<Json, StepError>> {
        match object(&self.spec, with) {
            Ok(with) => (self.run)(&self.api, ctx, &self.spec, with),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
}

/// The hand-written behaviour a catalog entry's `code:` names.
fn code(name: &str) -> Option<RunFn> {
    Some(match name {
        "chat" => boxed!(chat::run),
        "suno.lyrics" => boxed!(suno::lyrics),
        "suno.music" => boxed!(suno::music),
        "suno.timing" => boxed!(suno_timing::run),
        "midjourney" => boxed!(midjourney::imagine),
        "midjourney.action" => boxed!(midjourney::action),
        "image" => boxed!(media::image),
        "speech" => boxed!(media::speech),
        "transcription" => boxed!(media::transcription),
        "comet.task" => boxed!(comet_task::run),
        "http" => boxed!(http::run),
        "realtime" => boxed!(realtime::run),
        _ => return None,
    })
}

/// The load-time check a catalog entry's `code:` brings, if any.
fn check_of(name: &str) -> Option<CheckFn> {
    match name {
        "realtime" => Some(realtime::check),
        _ => None,
    }
}

/// Every catalog kind, each calling CometAPI through `api`.
pub(crate) fn kinds(api: &Arc<Api>) -> IndexMap<String, Arc<dyn Kind>> {
    let mut kinds = IndexMap::new();
    for (name, entry) in catalog::entries() {
        let run = match entry.code.as_deref() {
            None => boxed!(declared::run),
            // A test checks that every `code:` resolves, so none is skipped in a release.
            Some(c) => match code(c) {
                Some(run) => run,
                None => continue,
            },
        };
        let check = entry.code.as_deref().and_then(check_of);
        kinds.insert(
            name.to_owned(),
            Arc::new(Provider { spec: catalog::spec(name, entry), run, check, api: api.clone() })
                as Arc<dyn Kind>,
        );
    }
    kinds
}

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
    catalog::pick(json, path).cloned().unwrap_or(Json::Null)
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

/// The client's key for a paid call, checked before any request; the call is counted
/// against `budget` before it is made.
pub(crate) fn charged<'a>(api: &'a Api, ctx: &StepCtx) -> Result<&'a Secret, StepError> {
    let key = api.key()?;
    ctx.charge_call()?;
    Ok(key)
}

/// Downloads a result URL into the step folder as `stem.<ext>`; the local path.
pub(crate) async fn save(api: &Api, ctx: &StepCtx, url: &str, stem: &str) -> Result<String, StepError> {
    Ok(download::fetch(api, ctx.dir()?, url, stem).await?.display().to_string())
}

/// The outputs `<name>` (the file downloaded from `url`, or null when `url` is no string)
/// and `<name>_url` (`url` itself), in that order.
pub(crate) async fn url_outputs(
    api: &Api,
    ctx: &StepCtx,
    name: &str,
    url: &Json,
) -> Result<Map<String, Json>, StepError> {
    let path = match url.as_str() {
        Some(u) => Json::String(save(api, ctx, u, name).await?),
        None => Json::Null,
    };
    let mut out = Map::new();
    out.insert(name.to_owned(), path);
    out.insert(format!("{name}_url"), url.clone());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::Registry;

    #[test]
    fn every_catalog_entry_is_a_kind_and_every_code_it_names_exists() {
        for (name, entry) in catalog::entries() {
            if let Some(c) = &entry.code {
                assert!(code(c).is_some(), "{name} names code `{c}`, which does not exist");
            }
        }
        let registry = Registry::from_env();
        assert!(catalog::entries().all(|(name, _)| registry.get(name).is_some()));
    }
}
