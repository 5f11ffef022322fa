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
mod suno;
mod suno_timing;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{Map, Value as Json};

use super::{FieldSpec, FieldType, KindSpec, Registry, StepCtx, StepError, StepKind};

/// Runs one kind: the spec is passed so messages can name the kind.
type RunFn = for<'a> fn(&'a StepCtx, &'a KindSpec, Json) -> BoxFuture<'a, Result<Json, StepError>>;

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
        (self.run)(ctx, &self.spec, with)
    }
}

/// Adds every CometAPI kind to `registry`.
pub fn register(registry: &mut Registry) {
    let kinds: Vec<(KindSpec, RunFn)> = vec![
        (chat::spec(), chat::run),
        (suno::lyrics_spec(), suno::lyrics),
        (suno::music_spec(), suno::music),
        (suno_timing::spec(), suno_timing::run),
        (kling::spec("kling.text2video"), kling::run),
        (kling::spec("kling.image2video"), kling::run),
        (midjourney::imagine_spec(), midjourney::imagine),
        (midjourney::action_spec(), midjourney::action),
        (media::image_spec(), media::image),
        (media::speech_spec(), media::speech),
        (media::transcription_spec(), media::transcription),
        (comet_task::spec(), comet_task::run),
        (http::spec(), http::run),
    ];
    let declared = declared::specs().into_iter().map(|s| (s, declared::run as RunFn));
    for (spec, run) in kinds.into_iter().chain(declared) {
        registry.add(Arc::new(Provider { spec, run }));
    }
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

/// The value at a dotted path of a JSON answer, or null.
pub(crate) fn at(json: &Json, path: &str) -> Json {
    crate::api::catalog::pick(json, path).cloned().unwrap_or(Json::Null)
}
