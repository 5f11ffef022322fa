//! `media.subtitle`: adds soft subtitles to an mp4 (a `mov_text` track, video and audio
//! copied as they are) and writes the same cues as an `.srt` beside it. The cues come
//! from `subtitles` (a list of `{start, end, text}`, e.g. `suno.timing`'s `lines`) or
//! from an `srt` file.

use futures::future::BoxFuture;
use serde_json::{json, Value as Json};

use super::Kind;
use crate::contract::{FieldSpec, FieldType, KindSpec, StepCtx, StepError, StepKind};
use crate::media::{self, Cue};

pub struct Subtitle {
    spec: KindSpec,
}

impl Subtitle {
    pub fn new() -> Self {
        Subtitle {
            spec: KindSpec {
                name: "media.subtitle".into(),
                family: "local".into(),
                summary: "Adds a soft subtitle track to an mp4 (no re-encoding) and writes an .srt beside it.".into(),
                fields: vec![
                    FieldSpec::new("video", &[FieldType::String], "the mp4 to subtitle").required(),
                    FieldSpec::new("subtitles", &[FieldType::List], "the cues: a list of {start, end, text}, in seconds (e.g. steps.timing.outputs.lines)"),
                    FieldSpec::new("srt", &[FieldType::String], "an .srt file to read the cues from, instead of `subtitles`"),
                    FieldSpec::new("output", &[FieldType::String], "file name of the result in the step's folder (default: subtitled.mp4)"),
                ],
                outputs: vec![
                    ("path".into(), "absolute path of the subtitled mp4".into()),
                    ("srt".into(), "absolute path of the .srt written beside it".into()),
                    ("duration".into(), "its length in seconds".into()),
                    ("cues".into(), "how many subtitles it holds".into()),
                ],
                idempotent: true,
                ..KindSpec::default()
            },
        }
    }
}

impl Default for Subtitle {
    fn default() -> Self {
        Self::new()
    }
}

/// The cues from `subtitles` or the `srt` file, or a message saying what to give.
fn cues(ctx: &StepCtx, with: &Json) -> Result<Vec<Cue>, StepError> {
    match (with.get("subtitles").filter(|v| !v.is_null()), with.get("srt").and_then(Json::as_str)) {
        (Some(_), Some(_)) => Err(StepError::fatal("give `subtitles` or `srt`, not both; remove one")),
        (Some(Json::Array(items)), None) => items.iter().enumerate().map(|(i, item)| cue(i, item)).collect(),
        (Some(other), None) => Err(StepError::fatal(format!(
            "`subtitles` must be a list of {{start, end, text}}, not {other}; e.g. `{{{{ steps.timing.outputs.lines }}}}`"
        ))),
        (None, Some(path)) => {
            let path = ctx.resolve(path);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                StepError::fatal(format!("cannot read `srt` file {}: {e}; check the path", path.display()))
            })?;
            media::parse_srt(&text)
                .map_err(|e| StepError::fatal(format!("{} is not SubRip text: {e}; fix the file", path.display())))
        }
        (None, None) => Err(StepError::fatal(
            "`media.subtitle` needs `subtitles` (a list of {start, end, text}) or `srt` (a file); add one under `with:`",
        )),
    }
}

fn cue(i: usize, item: &Json) -> Result<Cue, StepError> {
    let num = |k: &str| match &item[k] {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    match (num("start"), num("end"), item["text"].as_str()) {
        (Some(start), Some(end), Some(text)) => Ok(Cue { start, end, text: text.to_owned() }),
        _ => Err(StepError::fatal(format!(
            "subtitle {} must have `start` and `end` (seconds) and `text`, but is {item}; fix `subtitles`",
            i + 1
        ))),
    }
}

impl Kind for Subtitle {}

impl StepKind for Subtitle {
    fn spec(&self) -> &KindSpec {
        &self.spec
    }

    fn execute<'a>(&'a self, ctx: &'a StepCtx, with: Json) -> BoxFuture<'a, Result<Json, StepError>> {
        Box::pin(async move {
            let video = with.get("video").and_then(Json::as_str).map(|v| ctx.resolve(v));
            let video =
                video.ok_or_else(|| StepError::fatal("`media.subtitle` needs `video` (an mp4 path)"))?;
            let cues = cues(ctx, &with)?;
            let name = with.get("output").and_then(Json::as_str).unwrap_or("subtitled.mp4");
            if name.contains('/') || name.contains("..") {
                return Err(StepError::fatal(format!(
                    "`output` is a file name in the step's folder, not a path: `{name}`"
                )));
            }
            let output = ctx.dir()?.join(name);
            let srt = output.with_extension("srt");
            let (count, srt_out) = (cues.len(), srt.clone());
            let done = tokio::task::spawn_blocking(move || {
                let out = media::add_subtitles(&video, &cues, &output)?;
                std::fs::write(&srt_out, media::to_srt(&cues))
                    .map_err(|source| media::MediaError::Write { path: srt_out.clone(), source })?;
                Ok::<_, media::MediaError>(out)
            })
            .await
            .map_err(|e| StepError::fatal(format!("the media task stopped unexpectedly: {e}")))?
            .map_err(|e| StepError::fatal(e.to_string()))?;
            Ok(json!({
                "path": done.path.display().to_string(),
                "srt": srt.display().to_string(),
                "duration": (done.duration * 1000.0).round() / 1000.0,
                "cues": count,
            }))
        })
    }
}
