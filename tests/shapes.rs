//! Request shapes: a minimal pipeline per kind runs against the simulator, whose
//! `/_sim/stats` `requests_log` shows each request's method, path, shaping headers and JSON
//! body (or multipart field names); one table per family says what must have been sent.
//! In expected bodies a string ending in `*` matches by prefix (base64 is cut in the log).

use serde_json::{json, Value as Json};

use crate::paid::{Sim, KEY};

struct Case {
    /// The steps, YAML under `steps:`; a `pic.png` file is in the folder.
    steps: &'static str,
    method: &'static str,
    path: &'static str,
    expect: Json,
}

fn matches(actual: &Json, expected: &Json) -> bool {
    match (actual, expected) {
        (_, Json::Object(want)) => want.iter().all(|(k, v)| matches(&actual[k], v)),
        (Json::String(a), Json::String(e)) if e.ends_with('*') => a.starts_with(&e[..e.len() - 1]),
        _ => actual == expected,
    }
}

/// Runs every case's pipeline against one simulator; checks the first request to `path`.
fn check(cases: &[Case]) {
    let sim = Sim::start("task_time=50ms");
    for case in cases {
        sim.reset();
        let yaml = format!("name: shapes\nsteps:\n{}", case.steps);
        let out = sim.test(&yaml).file("pic.png", "not really a png").args(&["run", "pipeline.yaml"]).run();
        assert_eq!(out.code, 0, "{}\n{}", case.steps, out.stderr);
        let log = sim.requests();
        let seen = log.iter().find(|r| r["method"] == case.method && r["path"] == case.path);
        let seen = seen.unwrap_or_else(|| panic!("no {} {} in {log:#?}", case.method, case.path));
        assert!(matches(seen, &case.expect), "{}: sent {seen:#}\nexpected {:#}", case.path, case.expect);
        assert!(!seen.to_string().contains(KEY), "the key was logged: {seen}");
    }
}

#[test]
fn openai_and_anthropic_send_their_documented_shapes() {
    check(&[
        Case {
            steps: "  a:\n    uses: anthropic.messages\n    with: { model: claude-sonnet-4-5, messages: [{role: user, content: hi}] }\n",
            method: "POST",
            path: "/v1/messages",
            expect: json!({"headers": {"anthropic-version": "2023-06-01", "content-type": "application/json"},
                           "body": {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [{"role": "user", "content": "hi"}]}}),
        },
        Case {
            steps: "  a:\n    uses: image.edit\n    with: { model: gpt-image-1, prompt: a hat, image: pic.png }\n",
            method: "POST",
            path: "/v1/images/edits",
            expect: json!({"headers": {"content-type": "multipart/form-data"}, "fields": ["model", "prompt", "image (file)"]}),
        },
    ]);
}

#[test]
fn runway_sends_its_version_header_and_data_uris() {
    check(&[Case {
        steps: "  a:\n    uses: runway.image2video\n    with: { image: pic.png, prompt: it moves }\n",
        method: "POST",
        path: "/runwayml/v1/image_to_video",
        expect: json!({"headers": {"x-runway-version": "2024-11-06"},
                       "body": {"promptImage": "data:image/png;base64,*", "promptText": "it moves", "model": "gen3a_turbo"}}),
    }]);
}

#[test]
fn kling_sends_strings_for_durations_and_wrapped_image_lists() {
    check(&[Case {
        steps: "  a:\n    uses: kling.multi_image2video\n    with: { images: [pic.png, \"https://x.test/b.png\"], duration: 5 }\n",
        method: "POST",
        path: "/kling/v1/videos/multi-image2video",
        expect: json!({"body": {"duration": "5", "image_list": [{"image": "bm90IHJlYWxseSBhIHBuZw=="}, {"image": "https://x.test/b.png"}]}}),
    }]);
}

#[test]
fn suno_extras_send_the_family_fields() {
    let song = "  song:\n    uses: suno.music\n    with: { gpt_description_prompt: rain }\n";
    let clip = "\"{{ steps.song.outputs.clips[0].id }}\"";
    let stems: &'static str = Box::leak(
        format!("{song}  b:\n    uses: suno.stems\n    with: {{ clip_id: {clip} }}\n").into_boxed_str(),
    );
    let more: &'static str = Box::leak(
        format!("{song}  b:\n    uses: suno.music\n    with: {{ prompt: la, continue_clip_id: {clip}, continue_at: 3, make_instrumental: true }}\n")
            .into_boxed_str(),
    );
    let concat: &'static str = Box::leak(
        format!("{song}  b:\n    uses: suno.concat\n    with: {{ clip_id: {clip} }}\n").into_boxed_str(),
    );
    let persona: &'static str = Box::leak(
        format!("{song}  b:\n    uses: suno.persona\n    with: {{ clip_id: {clip}, name: Ada }}\n")
            .into_boxed_str(),
    );
    check(&[
        Case {
            steps: stems,
            method: "POST",
            path: "/suno/submit/music",
            expect: json!({"body": {"gpt_description_prompt": "rain"}}),
        },
        Case {
            steps: concat,
            method: "POST",
            path: "/suno/submit/concat",
            expect: json!({"body": {"is_infill": false}}),
        },
        Case {
            steps: persona,
            method: "POST",
            path: "/suno/persona/create",
            expect: json!({"body": {"name": "Ada", "root_clip_id": "*"}}),
        },
        Case {
            steps: "  a:\n    uses: suno.upload\n    with: { audio: \"https://x.test/a.mp3\" }\n",
            method: "POST",
            path: "/suno/uploads/audio",
            expect: json!({"body": {"url": "https://x.test/a.mp3"}}),
        },
    ]);
    // The second submit of each pipeline is the extra's.
    for (steps, body) in [
        (
            stems,
            json!({"task": "gen_stem", "stem_type_group_name": "Two", "stem_task": "two", "mv": "chirp-auk"}),
        ),
        (more, json!({"continue_at": 3, "make_instrumental": true, "prompt": "la"})),
    ] {
        second_submit_matches(steps, body);
    }
}

fn second_submit_matches(steps: &str, body: Json) {
    let sim = Sim::start("task_time=50ms");
    let out = sim.test(&format!("name: shapes\nsteps:\n{steps}")).args(&["run", "pipeline.yaml"]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let log = sim.requests();
    let submits: Vec<&Json> = log.iter().filter(|r| r["path"] == "/suno/submit/music").collect();
    assert_eq!(submits.len(), 2, "{log:#?}");
    assert!(matches(submits[1], &json!({"body": body})), "sent {:#}", submits[1]);
    assert!(
        submits[1]["body"]["continue_clip_id"].as_str().is_some_and(|c| !c.is_empty()),
        "{:#}",
        submits[1]
    );
}

#[test]
fn recraft_and_ideogram_send_their_vendors_forms() {
    check(&[
        Case {
            steps: "  a:\n    uses: recraft.generate\n    with: { prompt: a boat }\n",
            method: "POST",
            path: "/recraft/v1/images/generations",
            expect: json!({"headers": {"content-type": "application/json"}, "body": {"prompt": "a boat"}}),
        },
        Case {
            steps: "  a:\n    uses: recraft.vectorize\n    with: { image: pic.png }\n",
            method: "POST",
            path: "/recraft/v1/images/vectorize",
            expect: json!({"fields": ["file (file)"]}),
        },
        Case {
            steps:
                "  a:\n    uses: ideogram.edit\n    with: { image: pic.png, mask: pic.png, prompt: a gull }\n",
            method: "POST",
            path: "/ideogram/v1/ideogram-v3/edit",
            expect: json!({"fields": ["prompt", "image (file)", "mask (file)"]}),
        },
        Case {
            steps: "  a:\n    uses: ideogram.upscale\n    with: { image: pic.png }\n",
            method: "POST",
            path: "/ideogram/v1/upscale",
            expect: json!({"fields": ["image_request", "image_file (file)"]}),
        },
    ]);
}

#[test]
fn pika_sends_its_prompt_and_a_local_image_as_a_data_uri() {
    check(&[Case {
        steps: "  a:\n    uses: pika.generate\n    poll: { interval: 50ms }\n    with: { prompt: it moves, image: pic.png, aspect_ratio: \"16:9\", duration: 5 }\n",
        method: "POST",
        path: "/pika/generate",
        expect: json!({"body": {"promptText": "it moves", "model": "pika-2.2", "aspectRatio": "16:9",
                                "duration": 5, "image": "data:image/png;base64,*"}}),
    }]);
}
