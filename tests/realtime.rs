//! The `realtime` kind end to end through the simulator's websocket: text and WAV in,
//! text, transcript and a playable WAV out; server `error` events said plainly; a session
//! started again only when it cannot have been billed; and the simulator's own protocol.

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value as Json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::Test;
use crate::paid::{Sim, KEY};

const ASK: &str = "\
name: rt
steps:
  answer:
    uses: realtime
    with:
      model: gpt-4o-realtime-preview
      instructions: Answer in one sentence.
      input: What is the capital of France?
      voice: coral
";

/// Sample rate, channels and seconds of a 16-bit PCM WAV file.
fn wav_header(path: &Json) -> (u32, u16, f64) {
    let bytes = std::fs::read(path.as_str().unwrap_or_else(|| panic!("not a path: {path}"))).unwrap();
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[8..16], b"WAVEfmt ");
    assert_eq!(u16::from_le_bytes([bytes[20], bytes[21]]), 1, "PCM");
    assert_eq!(u16::from_le_bytes([bytes[34], bytes[35]]), 16, "16-bit");
    let channels = u16::from_le_bytes([bytes[22], bytes[23]]);
    let rate = u32::from_le_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]);
    let data = u32::from_le_bytes([bytes[40], bytes[41], bytes[42], bytes[43]]);
    assert_eq!(bytes.len(), 44 + data as usize);
    (rate, channels, f64::from(data) / 2.0 / f64::from(rate) / f64::from(channels))
}

/// A stereo 44.1 kHz 16-bit WAV of `seconds`.
fn stereo_wav(seconds: f64) -> Vec<u8> {
    let frames = (44_100.0 * seconds) as u32;
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(36 + frames * 4).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt \x10\0\0\0\x01\0\x02\0");
    out.extend_from_slice(&44_100u32.to_le_bytes());
    out.extend_from_slice(&(44_100u32 * 4).to_le_bytes());
    out.extend_from_slice(b"\x04\0\x10\0data");
    out.extend_from_slice(&(frames * 4).to_le_bytes());
    for i in 0..frames {
        let s = ((i as f32 / 44_100.0 * 440.0 * std::f32::consts::TAU).sin() * 8000.0) as i16;
        out.extend_from_slice(&s.to_le_bytes());
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

fn sessions(sim: &Sim) -> usize {
    sim.requests().iter().filter(|r| r["path"] == "/v1/realtime").count()
}

#[test]
fn a_written_question_gets_text_a_transcript_and_a_playable_wav() {
    let t = Test::new().pipeline(ASK).args(&["run", "pipeline.yaml", "--simulate", "--json"]);
    let out = t.expect(0);
    let step = &out.json()["steps"]["answer"];
    let outputs = &step["outputs"];
    assert_eq!(outputs["transcript"], "Simulated reply to: What is the capital of France?");
    assert_eq!(outputs["text"], outputs["transcript"], "a spoken reply's text is its transcript");
    assert!(outputs["usage"]["output_token_details"]["audio_tokens"].as_u64().unwrap() > 0, "{outputs:#}");
    let (rate, channels, seconds) = wav_header(&outputs["audio"]);
    assert_eq!((rate, channels), (24_000, 1));
    assert!(seconds > 1.0, "{seconds}");
    assert!(outputs["audio"].as_str().unwrap().ends_with("/answer/reply.wav"));
}

#[test]
fn text_only_modality_gives_text_and_no_audio() {
    let yaml = ASK.replace("voice: coral", "modalities: [text]");
    let out = Test::new().pipeline(&yaml).args(&["run", "pipeline.yaml", "--simulate", "--json"]).expect(0);
    let outputs = &out.json()["steps"]["answer"]["outputs"];
    assert_eq!(outputs["text"], "Simulated reply to: What is the capital of France?");
    assert_eq!(outputs["transcript"], "");
    assert_eq!(outputs["audio"], Json::Null);
}

#[test]
fn a_stereo_44k_wav_is_sent_as_24k_mono_of_the_same_length() {
    let yaml = ASK.replace("input: What is the capital of France?", "audio: question.wav");
    let t = Test::new().pipeline(&yaml).args(&["run", "pipeline.yaml", "--simulate", "--json"]);
    std::fs::write(t.path().join("question.wav"), stereo_wav(1.5)).unwrap();
    let out = t.expect(0);
    // The simulator measures what it was sent: 24 kHz 16-bit mono, so 1.5 s is 72,000 bytes.
    assert_eq!(
        out.json()["steps"]["answer"]["outputs"]["text"],
        "Simulated reply to: (spoken question of 1.5 s)"
    );
}

/// ```text
///   say (speech: an MP3) ──> answer (realtime: hears it)
/// ```
#[test]
fn what_a_speech_step_said_as_mp3_is_heard_by_a_realtime_step() {
    let yaml = "\
name: rt
steps:
  say:
    uses: speech
    with: { model: tts-1, input: What is the capital of France? }
  answer:
    uses: realtime
    with:
      model: gpt-4o-realtime-preview
      audio: \"{{ steps.say.outputs.audio }}\"
";
    let t = Test::new().pipeline(yaml).args(&["run", "pipeline.yaml", "--simulate", "--json"]);
    let out = t.expect(0).json();
    let text = out["steps"]["answer"]["outputs"]["text"].as_str().unwrap_or_default().to_owned();
    assert!(text.starts_with("Simulated reply to: (spoken question of "), "{text}");
    assert!(!text.contains("of 0.0 s"), "the MP3 was decoded to audio: {text}");
}

#[test]
fn a_file_that_is_no_audio_is_refused_with_what_to_do() {
    let yaml = ASK.replace("input: What is the capital of France?", "audio: question.mp3");
    let t = Test::new().pipeline(&yaml).file("question.mp3", "ID3\u{4}\0\0\0\0\0\0 not really").args(&[
        "run",
        "pipeline.yaml",
        "--simulate",
    ]);
    let out = t.expect(1);
    assert!(out.stderr.contains("cannot use `"), "{}", out.stderr);
    assert!(out.stderr.contains("question.mp3` as `audio`"), "{}", out.stderr);
}

#[test]
fn a_server_error_event_is_reported_plainly_and_not_repeated() {
    let sim = Sim::start("realtime_error");
    let out = sim.test(ASK).args(&["run", "pipeline.yaml"]).expect(1);
    assert!(
        out.stderr.contains(
            "the realtime session reported an error: The server had an error while processing your request. \
             Sorry about that! (type `server_error`, code `server_error`)"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(sessions(&sim), 1);
}

#[test]
fn a_session_dropped_mid_response_is_not_started_again_and_says_what_arrived() {
    let sim = Sim::start("realtime_drop=1");
    let out = sim.test(ASK).args(&["run", "pipeline.yaml"]).expect(1);
    assert!(out.stderr.contains("before `response.done`, after "), "{}", out.stderr);
    assert!(out.stderr.contains("s of audio had arrived; it was not started again"), "{}", out.stderr);
    assert_eq!(sessions(&sim), 1, "a response that may be billed is never asked again");
}

#[test]
fn a_session_dropped_before_it_was_ready_is_started_again() {
    let sim = Sim::start("realtime_drop_early=2");
    let out = sim.test(ASK).args(&["run", "pipeline.yaml", "--json"]).expect(0);
    assert!(out.json()["steps"]["answer"]["outputs"]["audio"].is_string());
    assert_eq!(sessions(&sim), 3);
    let log = sim.requests();
    let first = log.iter().find(|r| r["path"] == "/v1/realtime").unwrap();
    assert_eq!(first["query"], "model=gpt-4o-realtime-preview");
}

#[test]
fn a_refused_upgrade_names_the_model_and_is_not_repeated() {
    let sim = Sim::start("");
    let out = sim
        .test(&ASK.replace("gpt-4o-realtime-preview", "unknown-realtime"))
        .args(&["run", "pipeline.yaml"])
        .expect(1);
    assert!(out.stderr.contains("unknown-realtime"), "{}", out.stderr);
    assert_eq!(sessions(&sim), 1);
}

#[test]
fn realtime_is_a_paid_kind_in_dry_run_kinds_and_validate() {
    let out = Test::new().pipeline(ASK).args(&["run", "pipeline.yaml", "--dry-run"]).expect(0);
    assert!(out.stdout.contains("paid calls: 1"), "{}", out.stdout);
    let kinds = Test::new().args(&["kinds", "realtime"]).expect(0).stdout;
    assert!(kinds.starts_with("realtime  [openai; available]"), "{kinds}");
    for name in ["input", "audio", "voice", "modalities", "instructions", "text:", "transcript:", "audio:"] {
        assert!(kinds.contains(name), "{name} missing:\n{kinds}");
    }
    let both = ASK.replace("voice: coral", "audio: q.wav");
    let out = Test::new().pipeline(&both).args(&["validate", "pipeline.yaml"]).expect(2);
    assert!(out.stderr.contains("`realtime` takes `input` or `audio`, not both"), "{}", out.stderr);
    let neither = ASK.replace("      input: What is the capital of France?\n", "");
    let out = Test::new().pipeline(&neither).args(&["validate", "pipeline.yaml"]).expect(2);
    assert!(out.stderr.contains("`realtime` needs `input` (text) or `audio` (a WAV file)"), "{}", out.stderr);
}

/// The simulator speaks the protocol itself: greeting, update, a turn, deltas, `response.done`.
#[test]
fn the_simulator_serves_the_realtime_events_in_order() {
    let sim = Sim::start("");
    let url = format!("{}/v1/realtime?model=gpt-realtime", sim.base_url.replace("http://", "ws://"));
    let events = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("authorization", format!("Bearer {KEY}").parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        for event in [
            json!({"type": "session.update", "session": {"modalities": ["text"], "voice": "nope"}}),
            json!({"type": "session.update", "session": {"modalities": ["text"], "instructions": "Be brief."}}),
            json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi there"}]}}),
            json!({"type": "response.create"}),
        ] {
            ws.send(Message::text(event.to_string())).await.unwrap();
        }
        let mut events = Vec::new();
        while let Some(Ok(Message::Text(t))) = ws.next().await {
            let event: Json = serde_json::from_str(t.as_str()).unwrap();
            let done = event["type"] == "response.done";
            events.push(event);
            if done {
                break;
            }
        }
        events
    });
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types[..5],
        ["session.created", "error", "session.updated", "conversation.item.created", "response.created"]
    );
    assert_eq!(events[1]["error"]["code"], "invalid_value");
    assert!(types.contains(&"response.text.delta") && !types.contains(&"response.audio.delta"), "{types:?}");
    let done = events.last().unwrap();
    assert_eq!(done["response"]["status"], "completed");
    assert!(done["response"]["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "response.text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Simulated reply to: Hi there");
}

/// Sessions a silent server saw: the request target and its `Authorization` header.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// A websocket server on 127.0.0.1 that accepts every session and never says a word.
// tungstenite's handshake callback returns its (large) error response by value.
#[allow(clippy::result_large_err)]
fn silent_server() -> (String, Seen) {
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Seen::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                let log = log.clone();
                let note = move |req: &Request, resp: Response| {
                    let auth = req.headers().get("authorization").map_or("", |v| v.to_str().unwrap_or(""));
                    log.lock().unwrap().push((req.uri().to_string(), auth.to_owned()));
                    Ok(resp)
                };
                if let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, note).await {
                    held.push(ws);
                }
            }
        });
    });
    (base, seen)
}

fn against(base: &str, yaml: &str) -> Test {
    Test::new()
        .pipeline(yaml)
        .env("COMETAPI_BASE_URL", &format!("{base}/v1"))
        .env("COMETAPI_KEY", KEY)
        .env("COMETFLOW_HTTP_BACKOFF", "10ms")
}

#[test]
fn a_silent_session_times_out_before_asking_and_is_tried_again_with_the_key_only_as_bearer() {
    let (base, seen) = silent_server();
    let out = against(&base, ASK)
        .env("COMETFLOW_HTTP_READ_TIMEOUT", "200ms")
        .args(&["run", "pipeline.yaml"])
        .expect(1);
    assert!(
        out.stderr.contains(
            "the realtime session sent nothing for 200ms before it was ready (gave up after 5 tries)"
        ),
        "{}",
        out.stderr
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 5, "nothing was asked, so every try was free");
    assert_eq!(seen[0], ("/v1/realtime?model=gpt-4o-realtime-preview".to_owned(), format!("Bearer {KEY}")));
    assert!(!out.stderr.contains(KEY));
}

#[test]
fn the_step_timeout_stops_a_session_and_it_is_not_retried() {
    let (base, seen) = silent_server();
    let yaml = ASK.replace(
        "    uses: realtime\n",
        "    uses: realtime\n    timeout: 300ms\n    retry: { attempts: 3, backoff: 10ms }\n",
    );
    let out = against(&base, &yaml).args(&["run", "pipeline.yaml", "--json"]).expect(1);
    let step = &out.json()["steps"]["answer"];
    assert_eq!(step["error"], "timed out after 300ms");
    assert_eq!(step["attempts"], 1);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn ctrl_c_stops_a_waiting_session_at_once() {
    let (base, _seen) = silent_server();
    let t = against(&base, ASK).args(&["run", "pipeline.yaml"]);
    let mut child = crate::child::Running::start(&t);
    child.expect_line("answer", std::time::Duration::from_secs(10));
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.signal(libc::SIGINT);
    let started = std::time::Instant::now();
    let (code, lines) = child.wait(std::time::Duration::from_secs(10));
    assert_eq!(code, 130, "{lines:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
}
