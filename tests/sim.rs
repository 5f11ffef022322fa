//! The simulator, spoken to over real HTTP: each family's submit → poll → result shapes,
//! errors, injected faults and the `/_sim/stats` accounting tests rely on.

use std::time::{Duration, Instant};

use cometflow::sim::{start, SimConfig, SimHandle};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};

const KEY: &str = "sk-test";
const CLIP: &[u8] = include_bytes!("../assets/sim/clip.mp4");
const SONG: &[u8] = include_bytes!("../assets/sim/song.mp3");
const IMAGE: &[u8] = include_bytes!("../assets/sim/image.png");

struct Sim {
    handle: SimHandle,
    http: reqwest::Client,
}

async fn sim(spec: &str) -> Sim {
    let mut config: SimConfig = spec.parse().unwrap();
    config.key = Some(KEY.to_owned());
    Sim { handle: start(config).await.unwrap(), http: reqwest::Client::new() }
}

/// A quick simulator: tasks finish in 300 ms.
async fn quick() -> Sim {
    sim("task_time=300ms").await
}

impl Sim {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url)
    }

    async fn answer(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        (status, body)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.answer(self.http.post(self.url(path)).bearer_auth(KEY).json(&body)).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.answer(self.http.get(self.url(path)).bearer_auth(KEY)).await
    }

    /// Polls `path` until `done` holds, returning every status seen (via `status`) and the last body.
    async fn poll(
        &self,
        path: &str,
        status: impl Fn(&Value) -> String,
        done: &[&str],
    ) -> (Vec<String>, Value) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen: Vec<String> = Vec::new();
        loop {
            let (code, body) = self.get(path).await;
            assert_eq!(code, StatusCode::OK, "{body}");
            let now = status(&body);
            if seen.last() != Some(&now) {
                seen.push(now.clone());
            }
            if done.contains(&now.as_str()) {
                return (seen, body);
            }
            assert!(Instant::now() < deadline, "never finished: {seen:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Downloads without the key, as clients must for result URLs.
    async fn download(&self, url: &str) -> (String, Vec<u8>) {
        assert!(url.starts_with(&self.handle.base_url), "{url} is not served by the simulator");
        let response = self.http.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        let length: usize = response.headers()[CONTENT_LENGTH].to_str().unwrap().parse().unwrap();
        let content_type = response.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
        let bytes = response.bytes().await.unwrap().to_vec();
        assert_eq!(bytes.len(), length, "Content-Length is honest");
        (content_type, bytes)
    }

    async fn stats(&self) -> Value {
        self.answer(self.http.get(self.url("/_sim/stats"))).await.1
    }
}

fn s(v: &Value) -> String {
    v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())
}

fn request_id_in(message: &Value) -> bool {
    message.as_str().is_some_and(|m| m.contains("(request id: "))
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let mut out = Vec::new();
    for chunk in text.trim_end_matches('=').as_bytes().chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &c)| n | u32::from(value(c)) << (18 - 6 * i));
        out.extend(n.to_be_bytes()[1..chunk.len()].iter());
    }
    out
}

// ---------------------------------------------------------------- OpenAI format

#[tokio::test]
async fn chat_answers_in_openai_shape_echoing_the_model() {
    let sim = quick().await;
    let (status, body) = sim
        .post("/v1/chat/completions", json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Write a song about rain"}]}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(s(&body["choices"][0]["message"]["content"]).contains("[Chorus]"), "a song request gets lyrics");
    let usage = &body["usage"];
    let total = usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap();
    assert_eq!(usage["total_tokens"], total);
}

#[tokio::test]
async fn chat_replies_are_scriptable_and_json_when_asked() {
    let sim = quick().await;
    let messages = json!([{"role": "user", "content": "anything"}]);
    let (_, scripted) = sim
        .post(
            "/v1/chat/completions",
            json!({"model": "m", "messages": messages, "sim_reply": "exactly this"}),
        )
        .await;
    assert_eq!(scripted["choices"][0]["message"]["content"], "exactly this");

    let schema = json!({"type": "object", "properties": {"title": {"type": "string"}, "scenes": {"type": "array", "items": {"type": "string"}}}});
    let format = json!({"type": "json_schema", "json_schema": {"name": "plan", "schema": schema}});
    let (_, body) = sim
        .post("/v1/chat/completions", json!({"model": "m", "messages": messages, "response_format": format}))
        .await;
    let content: Value =
        serde_json::from_str(body["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert!(content["title"].is_string() && content["scenes"].is_array(), "{content}");

    let (_, body) = sim
        .post(
            "/v1/chat/completions",
            json!({"model": "m", "messages": messages, "response_format": {"type": "json_object"}}),
        )
        .await;
    let content: Result<Value, _> =
        serde_json::from_str(body["choices"][0]["message"]["content"].as_str().unwrap());
    assert!(content.unwrap().is_object());
}

#[tokio::test]
async fn chat_streams_sse_chunks_then_usage_then_done() {
    let sim = quick().await;
    let body = json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}], "sim_reply": "one two three"});
    let response =
        sim.http.post(sim.url("/v1/chat/completions")).bearer_auth(KEY).json(&body).send().await.unwrap();
    assert_eq!(response.headers()[CONTENT_TYPE], "text/event-stream");
    let text = response.text().await.unwrap();
    let events: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    assert_eq!(events.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> =
        events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    let content: String =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(content, "one two three");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]), "the usage chunk has no choices");
    assert!(last["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn gateway_errors_use_the_comet_envelope() {
    let sim = quick().await;
    let (status, body) = sim.post("/v1/chat/completions", json!({"messages": []})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "");
    assert_eq!(body["error"]["type"], "comet_api_error");
    assert!(s(&body["error"]["message"]).starts_with("model name is required (request id: "), "{body}");

    let (status, body) = sim.post("/v1/chat/completions", json!({"model": "gpt-4o-mini"})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"]["code"], "invalid_request");

    let (status, body) =
        sim.post("/v1/chat/completions", json!({"model": "unknown-model", "messages": []})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "model_not_found");
    assert!(s(&body["error"]["message"]).starts_with(
        "no available channel for group default and model unknown-model (distributor) (request id: "
    ));
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_401_invalid_token() {
    let sim = quick().await;
    let body = json!({"model": "m", "messages": []});
    for request in [
        sim.http.post(sim.url("/v1/chat/completions")).json(&body),
        sim.http.post(sim.url("/v1/chat/completions")).bearer_auth("sk-wrong").json(&body),
        sim.http.get(sim.url("/suno/fetch/x")),
    ] {
        let (status, body) = sim.answer(request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"]["code"], "");
        assert_eq!(body["error"]["type"], "comet_api_error");
        assert!(s(&body["error"]["message"]).starts_with("invalid token (request id: "));
    }
}

#[tokio::test]
async fn models_responses_embeddings_messages_and_balance() {
    let sim = quick().await;
    let (_, models) = sim.get("/v1/models").await;
    assert!(models["data"].as_array().unwrap().iter().any(|m| m["id"] == "gpt-4o-mini"));

    let (_, response) = sim
        .post("/v1/responses", json!({"model": "gpt-5-mini", "input": "Explain it", "sim_reply": "ok"}))
        .await;
    assert_eq!(response["output_text"], "ok");
    assert_eq!(response["output"][0]["content"][0]["type"], "output_text");
    assert_eq!(response["output"][0]["content"][0]["text"], "ok");

    let (_, embedded) =
        sim.post("/v1/embeddings", json!({"model": "text-embedding-3-small", "input": ["a", "b"]})).await;
    assert_eq!(embedded["data"].as_array().unwrap().len(), 2);
    assert_eq!(embedded["data"][1]["index"], 1);
    assert!(embedded["data"][0]["embedding"].as_array().unwrap().len() > 1);

    let (_, message) = sim
        .post("/v1/messages", json!({"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], "sim_reply": "hello"}))
        .await;
    assert_eq!(message["type"], "message");
    assert_eq!(message["content"][0]["text"], "hello");
    assert!(message["usage"]["input_tokens"].is_u64());

    let (status, quota) = sim.answer(sim.http.get(sim.url(&format!("/user/quota?key={KEY}")))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(quota["total_quota"].is_number() && quota["keys"][0]["remain_quota"].is_number());
}

#[tokio::test]
async fn images_come_back_as_urls_for_dalle_and_base64_for_gpt_image() {
    let sim = quick().await;
    let (_, dalle) = sim
        .post(
            "/v1/images/generations",
            json!({"model": "dall-e-3", "prompt": "a boat", "response_format": "url"}),
        )
        .await;
    let (content_type, bytes) = sim.download(dalle["data"][0]["url"].as_str().unwrap()).await;
    assert_eq!((content_type.as_str(), bytes.as_slice()), ("image/png", IMAGE));

    let (_, gpt) =
        sim.post("/v1/images/generations", json!({"model": "gpt-image-1", "prompt": "a boat"})).await;
    assert_eq!(decode_base64(gpt["data"][0]["b64_json"].as_str().unwrap()), IMAGE);
    assert!(gpt["usage"]["total_tokens"].is_u64());

    let form = Form::new()
        .text("model", "gpt-image-1")
        .text("prompt", "make it red")
        .part("image", Part::bytes(IMAGE).file_name("in.png"));
    let (status, edited) =
        sim.answer(sim.http.post(sim.url("/v1/images/edits")).bearer_auth(KEY).multipart(form)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(edited["data"][0]["b64_json"].is_string());

    let form = Form::new().text("model", "gpt-image-1").text("prompt", "no image");
    let (status, _) =
        sim.answer(sim.http.post(sim.url("/v1/images/edits")).bearer_auth(KEY).multipart(form)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn speech_is_binary_mp3_and_transcription_is_text() {
    let sim = quick().await;
    let response = sim
        .http
        .post(sim.url("/v1/audio/speech"))
        .bearer_auth(KEY)
        .json(&json!({"model": "tts-1", "input": "hello", "voice": "alloy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[CONTENT_TYPE], "audio/mpeg");
    assert_eq!(response.bytes().await.unwrap().as_ref(), SONG);

    for path in ["/v1/audio/transcriptions", "/v1/audio/translations"] {
        let form = Form::new().text("model", "whisper-1").part("file", Part::bytes(SONG).file_name("a.mp3"));
        let (status, body) = sim.answer(sim.http.post(sim.url(path)).bearer_auth(KEY).multipart(form)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body["text"].as_str().is_some_and(|t| !t.is_empty()));
    }
}

// ---------------------------------------------------------------- task families

#[tokio::test]
async fn suno_music_moves_through_its_states_to_two_complete_clips() {
    let sim = quick().await;
    let (status, submitted) = sim
        .post("/suno/submit/music", json!({"gpt_description_prompt": "a cat song", "mv": "chirp-auk"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((submitted["code"].as_str(), submitted["message"].as_str()), (Some("success"), Some("")));
    let id = submitted["data"].as_str().unwrap();

    let (seen, body) =
        sim.poll(&format!("/suno/fetch/{id}"), |b| s(&b["data"]["status"]), &["SUCCESS", "FAILURE"]).await;
    assert_eq!(seen.last().unwrap(), "SUCCESS");
    assert!(seen.iter().any(|s| s == "IN_PROGRESS"), "{seen:?}");
    let order = ["NOT_START", "SUBMITTED", "QUEUED", "IN_PROGRESS", "SUCCESS"];
    let ranks: Vec<usize> = seen.iter().map(|s| order.iter().position(|o| o == s).unwrap()).collect();
    assert!(ranks.windows(2).all(|w| w[0] < w[1]), "states only move forward: {seen:?}");

    let task = &body["data"];
    assert_eq!(body["code"], "success");
    assert_eq!((task["task_id"].as_str(), task["action"].as_str()), (Some(id), Some("MUSIC")));
    assert_eq!((task["progress"].as_str(), task["fail_reason"].as_str()), (Some("100%"), Some("")));
    assert!(task["finish_time"].as_u64().unwrap() >= task["submit_time"].as_u64().unwrap());
    let clips = task["data"].as_array().unwrap();
    assert_eq!(clips.len(), 2, "a request produces two clips");
    for clip in clips {
        assert_eq!(clip["status"], "complete");
        assert_eq!(clip["model_name"], "chirp-auk");
        assert_eq!(clip["metadata"]["duration"], 5.0);
        let (kind, audio) = sim.download(clip["audio_url"].as_str().unwrap()).await;
        assert_eq!((kind.as_str(), audio.as_slice()), ("audio/mpeg", SONG));
        assert_eq!(sim.download(clip["video_url"].as_str().unwrap()).await.1, CLIP);
        assert_eq!(sim.download(clip["image_url"].as_str().unwrap()).await.1, IMAGE);
    }
    assert_ne!(clips[0]["id"], clips[1]["id"]);
}

#[tokio::test]
async fn suno_lyrics_batch_fetch_and_unknown_ids() {
    let sim = quick().await;
    let (_, submitted) = sim.post("/suno/submit/lyrics", json!({"prompt": "rainy city"})).await;
    let id = s(&submitted["data"]);
    let (_, body) = sim.poll(&format!("/suno/fetch/{id}"), |b| s(&b["data"]["status"]), &["SUCCESS"]).await;
    assert_eq!(body["data"]["action"], "LYRICS");
    let lyrics = &body["data"]["data"];
    assert_eq!(lyrics["status"], "complete");
    assert!(s(&lyrics["text"]).contains("[Verse]") && !s(&lyrics["title"]).is_empty());

    let (_, batch) = sim.post("/suno/fetch", json!({"ids": [id, "nope"], "action": "LYRICS"})).await;
    assert_eq!(batch["code"], "success");
    assert_eq!(batch["data"].as_array().unwrap().len(), 1);
    assert_eq!(batch["data"][0]["task_id"], id.as_str());

    let (status, missing) = sim.get("/suno/fetch/does-not-exist").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_ne!(missing["code"], "success");
}

#[tokio::test]
async fn kling_text2video_succeeds_with_a_downloadable_video() {
    let sim = quick().await;
    let (status, submitted) = sim
        .post("/kling/v1/videos/text2video", json!({"prompt": "a fox", "mode": "pro", "duration": 10}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(submitted["code"], 0);
    assert_eq!(submitted["data"]["task_status"], "submitted");
    let id = s(&submitted["data"]["task_id"]);
    let path = format!("/kling/v1/videos/text2video/{id}");
    let (seen, body) = sim.poll(&path, |b| s(&b["data"]["task_status"]), &["succeed", "failed"]).await;
    assert_eq!(seen, ["submitted", "processing", "succeed"]);
    assert_eq!((body["code"].as_i64(), body["message"].as_str()), (Some(0), Some("SUCCEED")));
    let video = &body["data"]["task_result"]["videos"][0];
    assert_eq!(video["duration"], "10", "numbers are accepted and reported as strings");
    assert!(video["id"].is_string());
    assert_eq!(sim.download(video["url"].as_str().unwrap()).await, ("video/mp4".to_owned(), CLIP.to_vec()));

    let (status, _) = sim.get(&format!("/kling/v1/videos/image2video/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the query path must match the submit route");
}

#[tokio::test]
async fn kling_rejects_bad_parameters_kling_style() {
    let sim = quick().await;
    for (path, body) in [
        ("/kling/v1/videos/text2video", json!({"prompt": "x", "mode": "turbo"})),
        ("/kling/v1/videos/text2video", json!({"prompt": "x", "duration": "7"})),
        ("/kling/v1/videos/image2video", json!({"prompt": "x"})),
        ("/kling/v1/videos/multi-image2video", json!({"image_list": [{"image": "a"}]})),
    ] {
        let (status, answer) = sim.post(path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}");
        assert_ne!(answer["code"], 0);
        assert!(answer["message"].is_string() && answer["request_id"].is_string());
    }
    let (_, images) = sim.post("/kling/v1/images/generations", json!({"prompt": "a fox", "n": 2})).await;
    let id = s(&images["data"]["task_id"]);
    let (_, body) = sim
        .poll(&format!("/kling/v1/images/generations/{id}"), |b| s(&b["data"]["task_status"]), &["succeed"])
        .await;
    let images = body["data"]["task_result"]["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(sim.download(images[1]["url"].as_str().unwrap()).await.1, IMAGE);
}

#[tokio::test]
async fn midjourney_imagine_then_upscale_through_buttons() {
    let sim = quick().await;
    let (_, submitted) = sim.post("/mj/submit/imagine", json!({"prompt": "a lighthouse --ar 16:9"})).await;
    assert_eq!((submitted["code"].as_i64(), submitted["description"].as_str()), (Some(1), Some("提交成功")));
    assert!(submitted["properties"].is_object());
    let id = s(&submitted["result"]);
    let (seen, task) =
        sim.poll(&format!("/mj/task/{id}/fetch"), |b| s(&b["status"]), &["SUCCESS", "FAILURE"]).await;
    assert_eq!(seen.last().unwrap(), "SUCCESS");
    assert!(seen.contains(&"IN_PROGRESS".to_owned()));
    assert_eq!((task["action"].as_str(), task["progress"].as_str()), (Some("IMAGINE"), Some("100%")));
    assert_eq!(task["imageUrl"], sim.url(&format!("/mj/image/{id}")).as_str());
    assert_eq!(sim.download(task["imageUrl"].as_str().unwrap()).await.1, IMAGE);
    let buttons = task["buttons"].as_array().unwrap();
    let labels: Vec<&str> = buttons.iter().map(|b| b["label"].as_str().unwrap()).collect();
    assert_eq!(buttons.len(), 9);
    for label in ["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4"] {
        assert!(labels.contains(&label), "{labels:?}");
    }
    let u1 = s(&buttons[0]["customId"]);
    assert!(u1.starts_with("MJ::JOB::upsample::1::"), "{u1}");

    let (_, bad) = sim
        .post("/mj/submit/action", json!({"taskId": id, "customId": "MJ::JOB::upsample::1::made-up"}))
        .await;
    assert_eq!(bad["code"], 4);

    let (_, upscale) = sim.post("/mj/submit/action", json!({"taskId": id, "customId": u1})).await;
    assert_eq!(upscale["code"], 1);
    let up_id = s(&upscale["result"]);
    let (_, up) = sim.poll(&format!("/mj/task/{up_id}/fetch"), |b| s(&b["status"]), &["SUCCESS"]).await;
    assert_eq!(up["action"], "UPSCALE");
    let up_buttons = up["buttons"].as_array().unwrap();
    assert!(
        !up_buttons.is_empty() && up_buttons.iter().all(|b| !s(&b["customId"]).contains("::upsample::1::"))
    );

    // Vary (Region) needs a modal: code 21, status MODAL until /mj/submit/modal.
    let region = up_buttons.iter().find(|b| b["label"] == "Vary (Region)").unwrap();
    let (_, modal) =
        sim.post("/mj/submit/action", json!({"taskId": up_id, "customId": region["customId"]})).await;
    assert_eq!(modal["code"], 21);
    let modal_id = s(&modal["result"]);
    assert_eq!(sim.get(&format!("/mj/task/{modal_id}/fetch")).await.1["status"], "MODAL");
    let (_, confirmed) =
        sim.post("/mj/submit/modal", json!({"taskId": modal_id, "prompt": "a red door"})).await;
    assert_eq!(confirmed["code"], 1);
    sim.poll(&format!("/mj/task/{modal_id}/fetch"), |b| s(&b["status"]), &["SUCCESS"]).await;
}

#[tokio::test]
async fn midjourney_parameter_errors_describe_and_blend() {
    let sim = quick().await;
    let (_, missing) = sim.post("/mj/submit/imagine", json!({"botType": "MID_JOURNEY"})).await;
    assert_eq!(missing["code"], 4);
    assert!(missing["description"].is_string());

    let (_, described) = sim.post("/mj/submit/describe", json!({"link": "https://example.com/a.png"})).await;
    let id = s(&described["result"]);
    let (_, task) = sim.poll(&format!("/mj/task/{id}/fetch"), |b| s(&b["status"]), &["SUCCESS"]).await;
    assert_eq!(task["action"], "DESCRIBE");
    assert!(s(&task["promptEn"]).contains("1️⃣"));

    let (_, blend) =
        sim.post("/mj/submit/blend", json!({"base64Array": ["data:image/png;base64,AA=="]})).await;
    assert_eq!(blend["code"], 4, "blend needs 2 to 5 images");

    let (status, _) = sim.get("/mj/task/0000/fetch").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unified_videos_complete_with_video_url_and_url() {
    let sim = quick().await;
    let form = Form::new()
        .text("model", "veo3-fast")
        .text("prompt", "waves")
        .text("seconds", "4")
        .text("size", "16x9")
        .part("input_reference", Part::bytes(IMAGE).file_name("first.png"));
    let (status, created) =
        sim.answer(sim.http.post(sim.url("/v1/videos")).bearer_auth(KEY).multipart(form)).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!((created["object"].as_str(), created["status"].as_str()), (Some("video"), Some("queued")));
    assert_eq!(created["id"], created["task_id"]);
    assert_eq!((created["seconds"].as_str(), created["size"].as_str()), (Some("4"), Some("16x9")));
    let id = s(&created["id"]);
    let (seen, done) =
        sim.poll(&format!("/v1/videos/{id}"), |b| s(&b["status"]), &["completed", "failed"]).await;
    assert_eq!(seen, ["queued", "in_progress", "completed"]);
    assert_eq!(done["progress"], 100);
    assert_eq!(done["video_url"], done["url"]);
    assert_eq!(sim.download(done["url"].as_str().unwrap()).await.1, CLIP);
}

// ---------------------------------------------------------------- faults

#[tokio::test]
async fn every_nth_request_is_rate_limited_with_retry_after() {
    let sim = sim("rate_limit_every=3,retry_after=2").await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = sim.http.get(sim.url("/v1/models")).bearer_auth(KEY).send().await.unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(response.headers()[RETRY_AFTER], "2");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["type"], "comet_api_error");
        }
    }
    assert_eq!(statuses, [200, 200, 429, 200, 200, 429]);
    assert_eq!(sim.stats().await["faults"]["rate_limited"], 2, "control routes are never faulted");
}

#[tokio::test]
async fn server_errors_are_retryable_500_and_503() {
    let sim = sim("server_error_every=2").await;
    let mut errors = Vec::new();
    for _ in 0..4 {
        let (status, body) = sim.get("/v1/models").await;
        if status != StatusCode::OK {
            let code = s(&body["error"]["code"]);
            assert!(code != "invalid_request" && code != "model_not_found", "{body}");
            assert!(request_id_in(&body["error"]["message"]));
            errors.push(status.as_u16());
        }
    }
    assert_eq!(errors, [500, 503]);
}

#[tokio::test]
async fn malformed_answers_are_200_with_truncated_json_and_submit_nothing() {
    let sim = sim("malformed_every=1").await;
    let response = sim
        .http
        .post(sim.url("/suno/submit/music"))
        .bearer_auth(KEY)
        .json(&json!({"tags": "pop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    assert_eq!(sim.stats().await["families"]["suno"]["submits"], 0);
}

#[tokio::test]
async fn the_first_downloads_of_each_file_are_cut_off() {
    let sim = sim("task_time=0,truncate_downloads=1").await;
    let (_, created) = sim.post("/kling/v1/videos/text2video", json!({"prompt": "x"})).await;
    let id = s(&created["data"]["task_id"]);
    let (_, body) = sim.get(&format!("/kling/v1/videos/text2video/{id}")).await;
    let url = s(&body["data"]["task_result"]["videos"][0]["url"]);

    let response = sim.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[CONTENT_LENGTH],
        CLIP.len().to_string().as_str(),
        "the full size is promised"
    );
    assert!(response.bytes().await.is_err(), "the body ends early");

    assert_eq!(sim.download(&url).await.1, CLIP, "the second download is whole");
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let sim = sim("latency=150ms").await;
    let started = Instant::now();
    sim.get("/v1/models").await;
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn failing_tasks_report_the_reason_where_each_family_does() {
    let sim = sim("task_time=0,fail_tasks=true,fail_reason=flagged by sim").await;
    let (_, suno) = sim.post("/suno/submit/music", json!({"prompt": "la la"})).await;
    let (_, task) = sim.get(&format!("/suno/fetch/{}", s(&suno["data"]))).await;
    assert_eq!(
        (task["data"]["status"].as_str(), task["data"]["fail_reason"].as_str()),
        (Some("FAILURE"), Some("flagged by sim"))
    );

    let (_, mj) = sim.post("/mj/submit/imagine", json!({"prompt": "x"})).await;
    let (_, task) = sim.get(&format!("/mj/task/{}/fetch", s(&mj["result"]))).await;
    assert_eq!(
        (task["status"].as_str(), task["failReason"].as_str()),
        (Some("FAILURE"), Some("flagged by sim"))
    );

    let (_, kling) = sim.post("/kling/v1/videos/text2video", json!({"prompt": "x"})).await;
    let (_, task) = sim.get(&format!("/kling/v1/videos/text2video/{}", s(&kling["data"]["task_id"]))).await;
    assert_eq!(
        (task["data"]["task_status"].as_str(), task["data"]["task_status_msg"].as_str()),
        (Some("failed"), Some("flagged by sim"))
    );

    let (_, video) = sim.post("/v1/videos", json!({"model": "sora-2", "prompt": "x"})).await;
    let (_, task) = sim.get(&format!("/v1/videos/{}", s(&video["id"]))).await;
    assert_eq!(
        (task["status"].as_str(), task["error"]["message"].as_str()),
        (Some("failed"), Some("flagged by sim"))
    );
}

#[tokio::test]
async fn a_prompt_marker_fails_just_that_task() {
    let sim = sim("task_time=0").await;
    let (_, bad) = sim.post("/suno/submit/music", json!({"prompt": "[sim:fail] la"})).await;
    let (_, good) = sim.post("/suno/submit/music", json!({"prompt": "la"})).await;
    assert_eq!(sim.get(&format!("/suno/fetch/{}", s(&bad["data"]))).await.1["data"]["status"], "FAILURE");
    assert_eq!(sim.get(&format!("/suno/fetch/{}", s(&good["data"]))).await.1["data"]["status"], "SUCCESS");
}

// ---------------------------------------------------------------- statistics

#[tokio::test]
async fn stats_count_submits_and_tasks_alive_at_once() {
    let sim = sim("task_time=2s").await;
    let submits = (0..3).map(|i| sim.post("/suno/submit/music", json!({"tags": format!("pop {i}")})));
    let ids: Vec<String> =
        futures::future::join_all(submits).await.iter().map(|(_, b)| s(&b["data"])).collect();
    sim.post("/kling/v1/videos/text2video", json!({"prompt": "x"})).await;

    let stats = sim.stats().await;
    let suno = &stats["families"]["suno"];
    assert_eq!((suno["submits"].as_u64(), suno["max_in_flight"].as_u64()), (Some(3), Some(3)));
    assert_eq!(suno["requests"], 3);
    assert_eq!(stats["families"]["kling"]["max_in_flight"], 1);
    let tasks = stats["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 4);
    for id in &ids {
        let task = tasks.iter().find(|t| t["id"] == id.as_str()).unwrap();
        assert_eq!(
            (task["family"].as_str(), task["route"].as_str()),
            (Some("suno"), Some("/suno/submit/music"))
        );
    }

    let reset = sim.http.post(sim.url("/_sim/reset")).send().await.unwrap();
    assert_eq!(reset.status(), StatusCode::OK, "control routes need no key");
    let stats = sim.stats().await;
    assert_eq!(stats["tasks"], json!([]));
    assert_eq!(stats["families"]["suno"]["submits"], 0);
    assert_eq!(sim.get(&format!("/suno/fetch/{}", ids[0])).await.0, StatusCode::OK, "tasks survive a reset");
}

#[tokio::test]
async fn synchronous_families_report_concurrent_requests() {
    let sim = sim("latency=200ms").await;
    let calls = (0..3).map(|_| {
        sim.post(
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
        )
    });
    futures::future::join_all(calls).await;
    let chat = &sim.stats().await["families"]["chat"];
    assert_eq!((chat["requests"].as_u64(), chat["max_in_flight"].as_u64()), (Some(3), Some(3)));
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let sim = quick().await;
    let url = sim.url("/v1/models");
    sim.handle.shutdown().await.unwrap();
    assert!(reqwest::Client::new().get(url).bearer_auth(KEY).send().await.is_err());
}
