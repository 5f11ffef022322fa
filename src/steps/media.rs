//! `media.merge` and `media.concat`: local steps over the `media` library. They resolve
//! paths, pick the output file in the step's folder, and run the (blocking) remux off the
//! async threads.

use std::path::PathBuf;

use futures::future::BoxFuture;
use serde_json::{json, Value as Json};

use super::Kind;
use crate::contract::{FieldSpec, FieldType, KindSpec, StepCtx, StepError, StepKind};
use crate::media::{self, Fit, MergeRequest};

pub struct Merge {
    spec: KindSpec,
}

pub struct Concat {
    spec: KindSpec,
}

fn outputs() -> Vec<(String, String)> {
    vec![
        (
            "path".into(),
            "absolute path of the result (mp4, or mp3 for joined audio) in the step's folder".into(),
        ),
        ("duration".into(), "its length in seconds".into()),
        ("method".into(), "`remux` (no re-encoding) or `ffmpeg`".into()),
    ]
}

fn output_field() -> FieldSpec {
    FieldSpec::new(
        "output",
        &[FieldType::String],
        "file name of the result in the step's folder (default: the kind's name + .mp4)",
    )
}

impl Merge {
    pub fn new() -> Self {
        let fits = [json!("loop-video"), json!("shortest"), json!("trim-audio")];
        Merge {
            spec: KindSpec {
                name: "media.merge".into(),
                family: "local".into(),
                summary: "Lays an audio track under one or more video clips: one mp4, remuxed without re-encoding where possible.".into(),
                fields: vec![
                    FieldSpec::new("video", &[FieldType::String, FieldType::List], "a clip's path, or a list of clips played in order").required(),
                    FieldSpec::new("audio", &[FieldType::String], "the song: mp3, aac or m4a").required(),
                    FieldSpec::new("fit", &[FieldType::String], "loop-video (repeat clips until the song ends), shortest, or trim-audio").values(&fits),
                    output_field(),
                ],
                outputs: outputs(),
                idempotent: true,
                ..KindSpec::default()
            },
        }
    }
}

impl Concat {
    pub fn new() -> Self {
        Concat {
            spec: KindSpec {
                name: "media.concat".into(),
                family: "local".into(),
                summary: "Joins clips end to end into one mp4, or MP3 files into one mp3 (no re-encoding)."
                    .into(),
                fields: vec![
                    FieldSpec::new("clips", &[FieldType::List], "the clips' (or MP3 files') paths, in order")
                        .required(),
                    output_field(),
                ],
                outputs: outputs(),
                idempotent: true,
                ..KindSpec::default()
            },
        }
    }
}

impl Default for Merge {
    fn default() -> Self {
        Self::new()
    }
}

impl Default for Concat {
    fn default() -> Self {
        Self::new()
    }
}

/// One path or a list of them, resolved against the pipeline's folder.
fn paths(ctx: &StepCtx, value: Option<&Json>, field: &str) -> Result<Vec<PathBuf>, StepError> {
    let list = match value {
        Some(Json::String(s)) => vec![s.as_str()],
        Some(Json::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .ok_or_else(|| StepError::fatal(format!("`{field}` must list file paths, but holds {i}")))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(StepError::fatal(format!("`{field}` must be a path or a list of paths, not {other}")))
        }
        None => return Err(StepError::fatal(format!("`{field}` is missing"))),
    };
    Ok(list.into_iter().map(|p| ctx.resolve(p)).collect())
}

fn output_path(ctx: &StepCtx, with: &Json, default: &str) -> Result<PathBuf, StepError> {
    let name = with.get("output").and_then(Json::as_str).unwrap_or(default);
    if name.contains('/') || name.contains("..") {
        return Err(StepError::fatal(format!(
            "`output` is a file name in the step's folder, not a path: `{name}`"
        )));
    }
    Ok(ctx.dir()?.join(name))
}

fn done(out: media::MediaOutput) -> Json {
    let method = match out.method {
        media::Method::Remux => "remux",
        media::Method::Ffmpeg => "ffmpeg",
    };
    json!({ "path": out.path.display().to_string(), "duration": (out.duration * 1000.0).round() / 1000.0, "method": method })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, media::MediaError> + Send + 'static,
) -> Result<T, StepError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StepError::fatal(format!("the media task stopped unexpectedly: {e}")))?
        .map_err(|e| StepError::fatal(e.to_string()))
}

impl Kind for Merge {}

impl StepKind for Merge {
    fn spec(&self) -> &KindSpec {
        &self.spec
    }

    fn execute<'a>(&'a self, ctx: &'a StepCtx, with: Json) -> BoxFuture<'a, Result<Json, StepError>> {
        Box::pin(async move {
            let video = paths(ctx, with.get("video"), "video")?;
            let audio = paths(ctx, with.get("audio"), "audio")?.remove(0);
            let fit: Fit = match with.get("fit").and_then(Json::as_str) {
                Some(f) => f.parse().map_err(|e: media::ParseFitError| StepError::fatal(e.to_string()))?,
                None => Fit::default(),
            };
            let output = output_path(ctx, &with, "merged.mp4")?;
            let req = MergeRequest { video, audio, fit, output };
            blocking(move || media::merge(&req)).await.map(done)
        })
    }
}

impl Kind for Concat {}

impl StepKind for Concat {
    fn spec(&self) -> &KindSpec {
        &self.spec
    }

    fn execute<'a>(&'a self, ctx: &'a StepCtx, with: Json) -> BoxFuture<'a, Result<Json, StepError>> {
        Box::pin(async move {
            let clips = paths(ctx, with.get("clips"), "clips")?;
            let audio = !clips.is_empty() && clips.iter().all(|c| media::is_mp3(c));
            let output = output_path(ctx, &with, if audio { "concat.mp3" } else { "concat.mp4" })?;
            blocking(move || media::concat(&clips, &output)).await.map(done)
        })
    }
}
