//! Result downloads: a URL streamed into the step's folder under a temporary name, checked
//! against `Content-Length`, capped in size, then renamed. A cut-off body is retried (it is
//! a read) and never left behind as an output. The API key is never sent: result hosts
//! are third parties (presigned storage URLs).
//!
//! It owns file naming and the byte stream; it must not know which family made the URL.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::retry::{self, Verdict};
use super::{errors, path_of, Api};
use crate::contract::StepError;

/// Downloads `url` to `dir/<stem>.<ext>` and returns the absolute path.
pub(crate) async fn fetch(api: &Api, dir: &Path, url: &str, stem: &str) -> Result<PathBuf, StepError> {
    let what = format!("downloading `{}`", api.redact(path_of(url)));
    let mut last = String::new();
    for attempt in 1..=api.backoff.tries {
        if attempt > 1 {
            tokio::time::sleep(api.backoff.delay(attempt)).await;
        }
        match try_once(api, dir, url, stem).await {
            Ok(path) => return Ok(std::path::absolute(&path).unwrap_or(path)),
            Err((message, Verdict::Final)) => {
                return Err(StepError::fatal(api.redact(&format!("{what}: {message}"))))
            }
            Err((message, Verdict::Retry(wait))) => {
                tracing::debug!(attempt, "{what}: {message}");
                if let Some(wait) = wait {
                    tokio::time::sleep(wait).await;
                }
                last = message;
            }
        }
    }
    Err(StepError::fatal(api.redact(&format!(
        "{what}: {last} (gave up after {} tries); the result URL may have expired, run the step again",
        api.backoff.tries
    ))))
}

async fn try_once(api: &Api, dir: &Path, url: &str, stem: &str) -> Result<PathBuf, (String, Verdict)> {
    let http = api.plain_http().map_err(|e| (e.message, Verdict::Final))?;
    let max = api.limits.max_download;
    let response = http.get(url).send().await.map_err(|e| (e.to_string(), Verdict::Retry(None)))?;
    let status = response.status();
    if !status.is_success() {
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap_or_default();
        let verdict = retry::on_status(
            retry::Call::Read,
            status,
            errors::read(&body).as_ref(),
            retry::retry_after(&headers),
        );
        return Err((format!("HTTP {}: {}", status.as_u16(), errors::snippet(&body)), verdict));
    }
    let expected = response.content_length();
    if expected.is_some_and(|n| n > max) {
        return Err((too_large(max), Verdict::Final));
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let name = format!("{stem}.{}", extension(url, &content_type));
    let tmp = dir.join(format!(".{name}.part"));
    let result = stream_to(response, &tmp, expected, max).await;
    if let Err(message) = result {
        // A partial file must never look like an output.
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(message);
    }
    let path = dir.join(&name);
    tokio::fs::rename(&tmp, &path)
        .await
        .map_err(|e| (format!("cannot rename `{}`: {e}", tmp.display()), Verdict::Final))?;
    Ok(path)
}

async fn stream_to(
    response: reqwest::Response,
    tmp: &Path,
    expected: Option<u64>,
    max: u64,
) -> Result<(), (String, Verdict)> {
    let local = |e: std::io::Error| (format!("cannot write `{}`: {e}", tmp.display()), Verdict::Final);
    let mut file = tokio::fs::File::create(tmp).await.map_err(local)?;
    let mut stream = response.bytes_stream();
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            (format!("the body was cut off after {written} bytes: {e}"), Verdict::Retry(None))
        })?;
        written += chunk.len() as u64;
        if written > max {
            return Err((too_large(max), Verdict::Final));
        }
        if let Some(n) = expected.filter(|&n| written > n) {
            return Err((
                format!("got more than the {n} bytes its Content-Length announced"),
                Verdict::Final,
            ));
        }
        file.write_all(&chunk).await.map_err(local)?;
    }
    file.flush().await.map_err(local)?;
    match expected {
        Some(n) if n != written => {
            Err((format!("got {written} of {n} bytes (Content-Length)"), Verdict::Retry(None)))
        }
        _ => Ok(()),
    }
}

fn too_large(max: u64) -> String {
    format!(
        "the file is larger than the {max} bytes limit; raise `COMETFLOW_MAX_DOWNLOAD_BYTES` \
         if such a file is expected"
    )
}

/// The file extension: from the URL's last segment, else from the content type, else `bin`.
pub(crate) fn extension(url: &str, content_type: &str) -> String {
    let last = path_of(url).rsplit('/').next().unwrap_or_default();
    if let Some((_, ext)) = last.rsplit_once('.') {
        if (1..=5).contains(&ext.len()) && ext.chars().all(|c| c.is_ascii_alphanumeric()) {
            return ext.to_ascii_lowercase();
        }
    }
    let mime = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let ext = match mime.as_str() {
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/wav" | "audio/x-wav" | "audio/wave" => "wav",
        "audio/aac" => "aac",
        "audio/flac" => "flac",
        "audio/ogg" | "audio/opus" => "opus",
        "video/mp4" => "mp4",
        "video/webm" => "webm",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "application/json" => "json",
        "text/plain" => "txt",
        _ => "bin",
    };
    ext.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_come_from_the_url_then_the_type() {
        assert_eq!(extension("https://cdn/x/audio.MP3?sig=1", ""), "mp3");
        assert_eq!(extension("https://api/mj/image/123", "image/png"), "png");
        assert_eq!(extension("https://api/mj/image/123", ""), "bin");
    }
}
