//! The built-in CometAPI simulator: a local HTTP server that answers like CometAPI
//! (paths, payloads, envelopes, task states and errors as described in the shared API
//! notes), so the whole product can be tested offline. `cometflow sim` serves it on a
//! port; `cometflow run --simulate` starts it in-process via [`start`].
//!
//! It owns: the routes and their shapes per family, task clocks (a task's status is a
//! pure function of time since submit and `task_time`), embedded result media, injected
//! faults, and the `/_sim/*` control routes (`stats`, `reset`, `files`). It must not know
//! anything about pipelines, the runner or the client: it only speaks HTTP, and nothing
//! outside this module depends on its internals beyond the public API below.

// Early-exit errors here are finished HTTP responses (`Result<_, Response>`); boxing them
// would only add noise to a test server where the error path is not hot.
#![allow(clippy::result_large_err)]

mod config;
mod control;
mod faults;
mod files;
mod http;
mod images;
mod kling;
mod media;
mod midjourney;
mod openai;
mod pika;
mod realtime;
mod requests;
mod state;
mod stats;
mod suno;
mod suno_act;
mod text;
mod vendors;
mod videos;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{Faults, SimArgs, SimConfig, SimSpecError};
use state::Sim;

/// Uploads (image edits, video references) can be large; real limits are the gateway's.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        // OpenAI format
        .route("/v1/chat/completions", post(openai::chat))
        .route("/v1/responses", post(openai::responses))
        .route("/v1/messages", post(openai::messages))
        .route("/v1/models", get(openai::models))
        .route("/v1/realtime", get(realtime::upgrade))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/images/generations", post(media::generations))
        .route("/v1/images/edits", post(media::edits))
        .route("/v1/audio/speech", post(media::speech))
        .route("/v1/audio/transcriptions", post(media::transcribe))
        .route("/v1/audio/translations", post(media::transcribe))
        .route("/v1/videos", post(videos::submit))
        .route("/v1/videos/{id}", get(videos::fetch))
        .route("/v1/videos/{id}/content", get(videos::content))
        // Runway, Luma, Replicate, MiniMax
        .route("/runwayml/v1/tasks/{id}", get(vendors::runway_fetch))
        .route("/runwayml/v1/{route}", post(vendors::runway_submit))
        .route("/pika/generate", post(pika::submit))
        .route("/pika/fetch/{id}", get(pika::fetch))
        .route("/dream-machine/v1/generations", post(vendors::luma_submit))
        .route("/dream-machine/v1/generations/{id}", get(vendors::luma_fetch))
        .route("/replicate/v1/models/{owner}/{name}/predictions", post(vendors::replicate_submit))
        .route("/replicate/v1/predictions/{id}", get(vendors::replicate_fetch))
        .route("/v1/video_generation", post(vendors::minimax_submit))
        .route("/v1/query/video_generation", get(vendors::minimax_query))
        .route("/v1/files/retrieve", get(vendors::minimax_file))
        // Recraft and Ideogram (unavailable on CometAPI; the vendors' shapes [I])
        .route("/recraft/v1/images/generations", post(images::recraft_generate))
        .route("/recraft/v1/images/{op}", post(images::recraft_file))
        .route("/recraft/v1/styles", post(images::recraft_style))
        .route("/ideogram/v1/ideogram-v3/{op}", post(images::ideogram_v3))
        .route("/ideogram/v1/describe", post(images::ideogram_describe))
        .route("/ideogram/v1/upscale", post(images::ideogram_upscale))
        // Suno (and Udio, on Suno's conventions [I])
        .route("/udio/submit/music", post(suno_act::udio_submit))
        .route("/udio/fetch/{id}", get(suno_act::udio_fetch))
        .route("/suno/submit/music", post(suno::submit_music))
        .route("/suno/submit/lyrics", post(suno::submit_lyrics))
        .route("/suno/fetch/{id}", get(suno::fetch))
        .route("/suno/fetch", post(suno::fetch_batch))
        .route("/suno/act/timing/{clip_id}", get(suno::timing))
        .route("/suno/act/wav/{clip_id}", get(suno_act::wav))
        .route("/suno/act/mp4/{clip_id}", get(suno_act::mp4))
        .route("/suno/uploads/audio", post(suno_act::upload))
        .route("/suno/submit/concat", post(suno_act::concat))
        .route("/suno/persona/create", post(suno_act::persona))
        // Kling
        .route("/kling/v1/videos/{action2}", post(kling::submit_video))
        .route("/kling/v1/images/{action2}", post(kling::submit_image))
        .route("/kling/v1/audio/{action2}", post(kling::submit_audio))
        .route("/kling/v1/{action}/{action2}/{task_id}", get(kling::query))
        // Midjourney
        .route("/mj/submit/imagine", post(midjourney::imagine))
        .route("/mj/submit/action", post(midjourney::action))
        .route("/mj/submit/blend", post(midjourney::blend))
        .route("/mj/submit/describe", post(midjourney::describe))
        .route("/mj/submit/modal", post(midjourney::modal))
        .route("/mj/submit/video", post(midjourney::video))
        .route("/mj/task/{id}/fetch", get(midjourney::fetch))
        .route("/mj/image/{id}", get(files::mj_image))
        // Balance (really on query.cometapi.com) and the simulator's own routes
        .route("/user/quota", get(control::quota))
        .route("/_sim/files/{id}/{name}", get(files::download))
        .route("/_sim/stats", get(control::stats))
        .route("/_sim/reset", post(control::reset))
        .fallback(control::not_found)
        .layer(axum::middleware::from_fn_with_state(sim.clone(), faults::gate))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(sim)
}

/// Serves the simulator on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    config: SimConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    // A wildcard bind is still reached through loopback from this machine.
    let host = if addr.ip().is_unspecified() { Ipv4Addr::LOCALHOST.into() } else { addr.ip() };
    let sim = Arc::new(Sim::new(config, format!("http://{}", SocketAddr::new(host, addr.port()))));
    axum::serve(listener, router(sim)).with_graceful_shutdown(shutdown).await
}

/// A simulator running in this process; stops when dropped or on [`SimHandle::shutdown`].
pub struct SimHandle {
    /// Where it listens, e.g. `http://127.0.0.1:40123` (no trailing slash, no `/v1`).
    pub base_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl SimHandle {
    /// Stops accepting connections and waits for open ones to finish.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            // The server may already be gone; nothing left to stop then.
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // Ignored for the same reason as in `shutdown`.
            let _ = stop.send(());
        }
    }
}

/// Binds `127.0.0.1:0` and serves in the background.
pub async fn start(config: SimConfig) -> std::io::Result<SimHandle> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, config, async move {
        // A dropped sender also means stop.
        let _ = stopped.await;
    }));
    Ok(SimHandle { base_url, stop: Some(stop), task: Some(task) })
}

/// `cometflow sim`: serve on `127.0.0.1:PORT` until Ctrl-C.
pub async fn run_cli(args: SimArgs) -> std::io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, args.port)).await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let config = SimConfig::from(args);
    let key = config.key.clone().unwrap_or_else(|| "sk-sim".to_owned());
    eprintln!("cometflow simulator listening on {base_url}");
    eprintln!("  export COMETAPI_BASE_URL={base_url} COMETAPI_KEY={key}");
    eprintln!("  stats: {base_url}/_sim/stats   settings: {config}");
    serve(listener, config, async {
        // If Ctrl-C cannot be watched, keep serving until the process is killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
    .await
}
