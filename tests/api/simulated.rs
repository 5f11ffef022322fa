//! Against the built-in simulator: every kind's outputs, faults survived, failures reported.

use super::*;

const SONG: &str = include_str!("../../workflows/song-to-video.yaml");

#[test]
fn the_flagship_workflow_runs_offline_and_yields_a_song_and_clips() {
    let case = case(SONG).env("COMETFLOW_SIM", "task_time=200ms");
    let run = case.run_with(&["--simulate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json();
    assert_eq!(json["status"], "succeeded");
    assert!(file_len(&json["outputs"]["song"]) > 1000);
    let clips = json["outputs"]["clips"].as_array().unwrap();
    assert_eq!(clips.len(), 2);
    for clip in clips {
        assert!(file_len(clip) > 1000);
    }
    let song = outputs(&json, "song");
    assert_eq!(song["clips"].as_array().unwrap().len(), 2);
    assert!(song["clips"][0]["audio_url"].as_str().unwrap().ends_with(".mp3"));
    assert!(song["task_id"].is_string());
}

#[test]
fn every_provider_kind_gives_its_outputs() {
    let yaml = r#"
name: kinds
steps:
  ask:
    uses: chat
    with:
      model: gpt-4o-mini
      messages: [{ role: user, content: "Reply with JSON" }]
      response_format: { type: json_object }
  words:
    uses: suno.lyrics
    with: { prompt: "a song about tea" }
  grid:
    uses: midjourney.imagine
    with: { prompt: "a paper boat --ar 1:1" }
  upscale:
    uses: midjourney.action
    with: { task_id: "{{ steps.grid.outputs.task_id }}", action: U2 }
  picture:
    uses: image
    with: { model: gpt-image-1, prompt: "a paper boat" }
  voice:
    uses: speech
    with: { model: tts-1, input: "hello there", voice: alloy }
  heard:
    uses: transcription
    with: { model: whisper-1, file: "{{ steps.voice.outputs.audio }}" }
  moving:
    uses: kling.image2video
    with: { image: "frame.png", prompt: "the boat drifts", duration: 10, mode: pro }
  declared:
    uses: comet.task
    poll: { interval: 50ms, max_interval: 100ms }
    with:
      submit: { method: POST, path: /suno/submit/music, body: { prompt: "la la", tags: "pop" } }
      id: data
      fetch: { path: "/suno/fetch/{id}" }
      status: data.status
      success: [SUCCESS]
      failure: [FAILURE]
      progress: data.progress
      error: data.fail_reason
      files: [data.data.0.audio_url, data.data.1.image_url]
  models:
    uses: http
    with: { url: /v1/models }
"#;
    let case = case(yaml).env("COMETFLOW_SIM", "task_time=200ms");
    std::fs::write(case.path().join("frame.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let run = case.run_with(&["--simulate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json();
    let ask = outputs(&json, "ask");
    assert!(ask["text"].as_str().unwrap().len() > 1);
    assert!(ask["json"].is_object(), "{ask}");
    assert!(ask["usage"]["total_tokens"].is_number());
    assert_eq!(ask["model"], "gpt-4o-mini");
    let words = outputs(&json, "words");
    assert!(words["text"].as_str().unwrap().contains("[Verse"), "{words}");
    assert!(words["title"].is_string() && words["task_id"].is_string());
    let grid = outputs(&json, "grid");
    assert_eq!(grid["buttons"].as_array().unwrap().len(), 9);
    assert!(file_len(&grid["image"]) > 100);
    let upscale = outputs(&json, "upscale");
    assert_ne!(upscale["task_id"], grid["task_id"]);
    assert!(file_len(&upscale["image"]) > 100);
    assert!(file_len(&outputs(&json, "picture")["image"]) > 100);
    assert_eq!(outputs(&json, "picture")["images"].as_array().unwrap().len(), 1);
    let voice = &outputs(&json, "voice")["audio"];
    assert!(voice.as_str().unwrap().ends_with(".mp3") && file_len(voice) > 1000);
    assert!(outputs(&json, "heard")["text"].as_str().unwrap().contains("transcription"));
    let moving = outputs(&json, "moving");
    assert!(file_len(&moving["video"]) > 1000);
    assert_eq!(moving["duration"], 10.0);
    let declared = outputs(&json, "declared");
    assert_eq!(declared["status"], "SUCCESS");
    let files = declared["files"].as_array().unwrap();
    assert!(
        files[0].as_str().unwrap().ends_with("file-1.mp3")
            && files[1].as_str().unwrap().ends_with("file-2.png")
    );
    let models = outputs(&json, "models");
    assert_eq!(models["status"], 200);
    assert!(models["json"]["data"].is_array());
}

#[test]
fn a_failed_task_exits_1_with_the_providers_reason() {
    let yaml = "name: f\nsteps:\n  clip:\n    uses: kling.text2video\n    with: { prompt: a cat }\n";
    let case =
        case(yaml).env("COMETFLOW_SIM", "task_time=100ms,fail_tasks=true,fail_reason=risk control: nope");
    let run = case.run_with(&["--simulate"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("risk control: nope"), "{}", run.stderr);
    let error = run.json()["steps"]["clip"]["error"].as_str().unwrap().to_owned();
    assert!(error.contains("kling task") && error.contains("risk control: nope"), "{error}");
}

#[test]
fn server_errors_and_rate_limits_while_polling_are_survived() {
    let yaml = "name: f\nsteps:\n  clip:\n    uses: kling.text2video\n    poll: { interval: 50ms, max_interval: 50ms }\n    with: { prompt: a cat }\n  song:\n    uses: suno.music\n    poll: { interval: 50ms, max_interval: 50ms }\n    with: { tags: jazz }\n";
    let case = case(yaml)
        .env("COMETFLOW_SIM", "task_time=500ms,server_error_every=3,rate_limit_every=7,retry_after=0");
    let run = case.run_with(&["--simulate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn a_truncated_download_is_retried_and_never_left_as_an_output() {
    let yaml = "name: t\nsteps:\n  clip:\n    uses: kling.text2video\n    with: { prompt: a cat }\n";
    let case = case(yaml).env("COMETFLOW_SIM", "task_time=100ms,truncate_downloads=2");
    let run = case.run_with(&["--simulate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json();
    let video = &outputs(&json, "clip")["video"];
    let full = std::fs::read(video.as_str().unwrap()).unwrap();
    let expected = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/sim/clip.mp4")).unwrap();
    assert_eq!(full, expected);
    let leftovers: Vec<_> = files_under(&case.state_dir())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_unknown_model_is_named_and_not_retried() {
    let yaml = "name: m\nsteps:\n  ask:\n    uses: chat\n    with: { model: unknown-gpt, messages: [{ role: user, content: hi }] }\n";
    let run = case(yaml).run_with(&["--simulate"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("model `unknown-gpt` does not exist"), "{}", run.stderr);
    assert_eq!(run.json()["steps"]["ask"]["attempts"], 1);
}

#[test]
fn kling_concurrency_limits_hold_under_a_wide_fan_out() {
    let sim = crate::paid::Sim::start("task_time=300ms");
    let yaml = "name: fan\nlimits:\n  kling: { concurrency: 2 }\nsteps:\n  clip:\n    uses: kling.text2video\n    for_each: \"{{ range(20) }}\"\n    poll: { interval: 50ms, max_interval: 100ms }\n    with: { prompt: \"shot {{ item }}\" }\n";
    let run = sim.test(yaml).args(&["run", "pipeline.yaml", "--json", "--concurrency", "20"]).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stats = sim.stats();
    let kling = &stats["families"]["kling"];
    assert_eq!(kling["submits"], 20, "{stats}");
    assert!(kling["max_in_flight"].as_u64().unwrap() <= 2, "{stats}");
    assert!(kling["max_in_flight"].as_u64().unwrap() >= 1, "{stats}");
}

#[test]
fn a_wrong_key_gets_the_clear_401_message() {
    let rt = runtime();
    let sim = rt.block_on(cometflow::sim::start("key=sk-right".parse().unwrap())).unwrap();
    let yaml = "name: k\nsteps:\n  ask:\n    uses: chat\n    with: { model: gpt-4o-mini, messages: [{ role: user, content: hi }] }\n";
    let case = case(yaml).env("COMETAPI_BASE_URL", &format!("{}/v1/", sim.base_url)).env("COMETAPI_KEY", KEY);
    let run = case.run();
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("CometAPI rejected the key (invalid token (request id: "), "{}", run.stderr);
}

#[test]
fn the_key_never_reaches_output_or_files() {
    let rt = runtime();
    let sim =
        rt.block_on(cometflow::sim::start(format!("key={KEY},task_time=100ms").parse().unwrap())).unwrap();
    let yaml = r#"
name: leak
steps:
  ask:
    uses: chat
    with: { model: gpt-4o-mini, messages: [{ role: user, content: "say {{ env.COMETFLOW_ECHO }}" }] }
  song:
    uses: suno.music
    poll: { interval: 50ms, max_interval: 50ms }
    with: { tags: jazz }
  bad:
    uses: chat
    continue_on_error: true
    with: { model: unknown-x, messages: [{ role: user, content: hi }] }
  echo:
    uses: http
    continue_on_error: true
    with: { url: /v1/nothing-here }
"#;
    let case = case(yaml)
        .env("COMETAPI_BASE_URL", &sim.base_url)
        .env("COMETAPI_KEY", KEY)
        .env("COMETFLOW_ECHO", "hi");
    let run = case.run_with(&["-vv"]);
    assert!(run.stdout.contains("\"succeeded\""), "{}", run.stderr);
    assert!(!run.stdout.contains(KEY) && !run.stderr.contains(KEY));
    for file in files_under(&case.state_dir()) {
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(KEY), "the key is in {}", file.display());
    }
}
