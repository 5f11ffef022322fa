//! `realtime`: one turn of OpenAI's Realtime API over a websocket. The user speaks with
//! `input` (text) or `audio` (a WAV, MP3, AAC, FLAC or Ogg file, converted here to the
//! session's 24 kHz 16-bit mono PCM); the reply comes back as `text`, `transcript` and
//! `audio` (a WAV file in the step's folder). Other `with` fields go into `session.update`'s
//! `session`.
//!
//! Hand-written because a session is a conversation of events, not one request: this file
//! shapes the turn and its outputs (fields are in the catalog); the session itself is
//! `crate::api::realtime`'s.

mod decode;
mod wav;

use std::time::Instant;

use serde_json::{json, Map, Value as Json};

use super::{charged, required_str};
use crate::api::realtime::{Ask, Input, Reply};
use crate::api::Api;
use crate::contract::{KindSpec, StepCtx, StepError};
use crate::path;
use crate::steps::Problem;
use crate::template::Tmpl;

/// Fields that shape the call rather than pass through to `session`.
const OWN: &[&str] = &["model", "input", "audio", "modalities", "max_output_tokens"];

/// `input` or `audio`, not both: a load-time check the field list cannot say.
pub(super) fn check(with: &Tmpl) -> Vec<Problem> {
    let keys = with.keys();
    let has = |k: &str| keys.iter().any(|x| x == k);
    match (has("input"), has("audio")) {
        (true, true) => {
            vec![Problem::new(path!["audio"], "`realtime` takes `input` or `audio`, not both")
                .help("keep `input` for text, or `audio` for a WAV file")]
        }
        (false, false) if with.is_literal() || !keys.is_empty() => {
            vec![Problem::new(path![], "`realtime` needs `input` (text) or `audio` (a WAV file)")
                .help("add e.g. `input: \"What is the capital of France?\"` under `with:`")]
        }
        _ => Vec::new(),
    }
}

pub(super) async fn run(
    api: &Api,
    ctx: &StepCtx,
    spec: &KindSpec,
    with: Map<String, Json>,
) -> Result<Json, StepError> {
    let model = required_str(spec, &with, "model")?.to_owned();
    let input =
        match (with.get("input"), with.get("audio")) {
            (Some(Json::String(text)), None) if !text.trim().is_empty() => Input::Text(text.clone()),
            (None, Some(Json::String(file))) if !file.trim().is_empty() => {
                Input::Audio(read_wav(ctx, file).await?)
            }
            _ => return Err(StepError::fatal(
                "`realtime` needs `input` (non-empty text) or `audio` (a WAV file), not both; fix `with:`",
            )),
        };
    let modalities = with.get("modalities").cloned().unwrap_or_else(|| json!(["audio", "text"]));
    let spoken = modalities.as_array().is_some_and(|m| m.iter().any(|x| x == "audio"));
    let mut session: Map<String, Json> = with
        .iter()
        .filter(|(k, _)| !OWN.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    session.insert("modalities".into(), modalities.clone());
    session.insert("input_audio_format".into(), json!("pcm16"));
    session.insert("output_audio_format".into(), json!("pcm16"));
    // One turn, driven by `response.create`: the server must not detect turns by itself.
    session.insert("turn_detection".into(), Json::Null);
    let mut response = json!({ "modalities": modalities });
    if let Some(max) = with.get("max_output_tokens") {
        response["max_output_tokens"] = max.clone();
    }
    let ask = Ask { model, session: Json::Object(session), input, response };

    charged(api, ctx)?;
    let every = super::chat::progress_every();
    let mut last: Option<Instant> = None;
    let mut progress = |r: &Reply| {
        if last.is_none_or(|t| t.elapsed() >= every) {
            last = Some(Instant::now());
            ctx.progress(growing(r));
        }
    };
    let reply = api.realtime(&ask, &ctx.cancel, &mut progress).await?;

    let audio = if spoken && !reply.audio.is_empty() {
        let path = ctx.dir()?.join("reply.wav");
        let bytes = wav::wav_file(&reply.audio, wav::RATE);
        tokio::fs::write(&path, bytes)
            .await
            .map_err(|e| StepError::fatal(format!("cannot write `{}`: {e}", path.display())))?;
        Json::String(path.display().to_string())
    } else {
        Json::Null
    };
    let text = if reply.text.is_empty() { reply.transcript.clone() } else { reply.text.clone() };
    Ok(json!({
        "text": text,
        "transcript": reply.transcript,
        "audio": audio,
        "usage": reply.response.get("usage").cloned().unwrap_or(Json::Null),
    }))
}

/// The WAV file at `file` as session PCM, or a message naming it.
async fn read_wav(ctx: &StepCtx, file: &str) -> Result<Vec<u8>, StepError> {
    let path = ctx.resolve(file);
    let bytes = tokio::fs::read(&path).await.map_err(|e| {
        StepError::fatal(format!("cannot read the `audio` file `{}`: {e}; check the path", path.display()))
    })?;
    tokio::task::spawn_blocking(move || wav::to_session_pcm(&bytes))
        .await
        .map_err(|e| StepError::fatal(format!("converting the `audio` file failed: {e}")))?
        .map_err(|why| StepError::fatal(format!("cannot use `{}` as `audio`: {why}", path.display())))
}

/// The progress line: the tail of what has been said, and the audio so far.
fn growing(r: &Reply) -> String {
    let words = if r.text.is_empty() { &r.transcript } else { &r.text };
    let line = super::chat::tail(words);
    if r.audio.is_empty() {
        line
    } else {
        format!("{line}  [{:.1}s audio]", wav::seconds(r.audio.len()))
    }
}
