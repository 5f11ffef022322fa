//! Result files: the embedded media, the unauthenticated download routes
//! (`/_sim/files/{id}/{name}`, `/mj/image/{id}`) and the truncated-download fault.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::state::Sim;

pub(crate) const CLIP_MP4: &[u8] = include_bytes!("../../assets/sim/clip.mp4");
pub(crate) const SONG_MP3: &[u8] = include_bytes!("../../assets/sim/song.mp3");
pub(crate) const VECTOR_SVG: &[u8] =
    br##"<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><circle cx="32" cy="32" r="24" fill="#f60"/></svg>"##;
pub(crate) const IMAGE_PNG: &[u8] = include_bytes!("../../assets/sim/image.png");

/// Length of `song.mp3` in seconds, reported as clip durations.
pub(crate) const SONG_SECONDS: f64 = 5.0;

/// The absolute URL of a result file.
pub(crate) fn file_url(base: &str, id: &str, name: &str) -> String {
    format!("{base}/_sim/files/{id}/{name}")
}

/// Which embedded asset a file name stands for, by extension.
fn asset_for(name: &str) -> Option<(&'static [u8], &'static str)> {
    let ext = name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase())?;
    match ext.as_str() {
        "mp4" => Some((CLIP_MP4, "video/mp4")),
        // Any 3D model is the one png too: the download path, not the bytes, is under test.
        "glb" => Some((IMAGE_PNG, "model/gltf-binary")),
        "mp3" => Some((SONG_MP3, "audio/mpeg")),
        // A WAV is the mp3 too, under WAV's type: the route and the download are under test.
        "wav" => Some((SONG_MP3, "audio/wav")),
        "svg" => Some((VECTOR_SVG, "image/svg+xml")),
        // Every picture is the one png; a .jpeg name still gets honest png bytes.
        "png" | "jpg" | "jpeg" | "webp" => Some((IMAGE_PNG, "image/png")),
        _ => None,
    }
}

pub(crate) async fn download(
    State(sim): State<Arc<Sim>>,
    Path((id, name)): Path<(String, String)>,
) -> Response {
    match asset_for(&name) {
        Some((bytes, content_type)) if sim.has_file(&id) => {
            serve_bytes(&sim, &format!("/_sim/files/{id}/{name}"), bytes, content_type)
        }
        _ => (StatusCode::NOT_FOUND, "no such simulator file").into_response(),
    }
}

/// `GET /mj/image/{id}`: the Midjourney image proxy (no key, like the files).
pub(crate) async fn mj_image(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> Response {
    if !sim.has_file(&id) {
        return (StatusCode::NOT_FOUND, "no such image").into_response();
    }
    serve_bytes(&sim, &format!("/mj/image/{id}"), IMAGE_PNG, "image/png")
}

/// Serves a file with its full Content-Length; the first `truncate_downloads` downloads of
/// each path send half the body and then fail the stream, so the connection drops mid-body.
pub(crate) fn serve_bytes(
    sim: &Sim,
    path: &str,
    bytes: &'static [u8],
    content_type: &'static str,
) -> Response {
    let n = sim.next_download(path);
    let body = if n <= sim.config.faults.truncate_downloads {
        tracing::debug!(path, download = n, "sim fault: truncating download");
        sim.count_fault("truncated_downloads");
        let half: Result<Bytes, std::io::Error> = Ok(Bytes::from_static(&bytes[..bytes.len() / 2]));
        // The pause lets hyper flush the headers and the first half before the error
        // aborts the connection; failing at once would lose the response entirely.
        let cut = async {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "sim: truncated download"))
        };
        Body::from_stream(futures::stream::iter([half]).chain(futures::stream::once(cut)))
    } else {
        Body::from(Bytes::from_static(bytes))
    };
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, bytes.len())
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Standard base64 with padding (what OpenAI's `b64_json` uses).
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_examples() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn file_names_pick_the_asset_by_extension() {
        assert_eq!(asset_for("video.mp4").map(|a| a.1), Some("video/mp4"));
        assert_eq!(asset_for("audio.mp3").map(|a| a.1), Some("audio/mpeg"));
        assert_eq!(asset_for("image.png").map(|a| a.1), Some("image/png"));
        assert!(asset_for("notes.txt").is_none());
    }
}
