//! `chat` with `stream: true`: the same outputs as a plain call, and a stream cut in the
//! middle is an error that says how much arrived and is not asked again.

use crate::paid::Sim;

const CHAT: &str = "\
name: s
steps:
  story:
    uses: chat
    with:
      model: gpt-4o-mini
      stream: STREAM
      messages: [{ role: user, content: Tell me about the sea }]
";

fn chats(sim: &Sim) -> usize {
    sim.requests().iter().filter(|r| r["path"] == "/v1/chat/completions").count()
}

#[test]
fn a_streamed_reply_has_the_same_outputs_as_a_plain_one() {
    let sim = Sim::start("");
    let plain =
        sim.test(&CHAT.replace("STREAM", "false")).args(&["run", "pipeline.yaml", "--json"]).expect(0);
    let streamed =
        sim.test(&CHAT.replace("STREAM", "true")).args(&["run", "pipeline.yaml", "--json"]).expect(0);
    let (plain, streamed) =
        (&plain.json()["steps"]["story"]["outputs"], &streamed.json()["steps"]["story"]["outputs"]);
    assert_eq!(streamed["text"], "Simulated reply to: Tell me about the sea");
    for name in ["text", "json", "usage", "model"] {
        assert_eq!(streamed[name], plain[name], "{name}");
    }
    assert_eq!(streamed["raw"]["object"], "chat.completion");
    assert_eq!(streamed["raw"]["choices"][0]["finish_reason"], "stop");
    let sent = sim.requests();
    let bodies: Vec<_> =
        sent.iter().filter(|r| r["path"] == "/v1/chat/completions").map(|r| &r["body"]).collect();
    assert_eq!(bodies[0]["stream"], false);
    assert_eq!(bodies[1]["stream"], true);
    assert_eq!(bodies[1]["stream_options"]["include_usage"], true);
}

#[test]
fn a_cut_stream_fails_naming_what_arrived_and_is_not_asked_again() {
    let sim = Sim::start("cut_streams=1");
    let out = sim.test(&CHAT.replace("STREAM", "true")).args(&["run", "pipeline.yaml"]).expect(1);
    assert!(out.stderr.contains("the answer stream broke ("), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("characters of the reply) had arrived, without `data: [DONE]`; it was not asked again"),
        "{}",
        out.stderr
    );
    assert_eq!(chats(&sim), 1);
}

#[test]
fn a_refused_stream_is_retried_like_any_submit_before_it_begins() {
    let sim = Sim::start("rate_limit_every=1000,server_error_every=1");
    let out = sim.test(&CHAT.replace("STREAM", "true")).args(&["run", "pipeline.yaml"]).expect(1);
    assert!(out.stderr.contains("gave up after 5 tries"), "{}", out.stderr);
    assert_eq!(chats(&sim), 5);
}

/// On a terminal (a pseudo-terminal from util-linux `script`), `chat` streams unless told not to.
#[test]
fn on_a_terminal_chat_streams_by_default() {
    let yaml = CHAT.replace("      stream: STREAM\n", "");
    let sim = Sim::start("");
    let t = sim.test(&yaml);
    let command = format!("{} run pipeline.yaml --json", crate::harness::BIN);
    let Ok(out) = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(t.path())
        .env("COMETFLOW_STATE_DIR", t.state_dir())
        .env("COMETAPI_BASE_URL", &sim.base_url)
        .env("COMETAPI_KEY", crate::paid::KEY)
        .env("NO_COLOR", "1")
        .output()
    else {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let sent = sim.requests();
    let chat = sent.iter().find(|r| r["path"] == "/v1/chat/completions").unwrap();
    assert_eq!(chat["body"]["stream"], true, "{chat:#}");
}
