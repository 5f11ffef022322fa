//! The live view on a terminal: one line per running step (spinner, elapsed time, the
//! provider's progress), dim lines for steps waiting on others, and above them the
//! permanent lines: logs, retries, and each finished step collapsed to its status line.
//!
//! `render` is a pure function of the state, so it is tested without a terminal. The
//! engine stays event-driven: a 100 ms ticker only redraws (spinner, elapsed), which also
//! caps redraws at ten a second however fast events arrive.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use super::{Human, Paint};
use crate::engine::events::{Event, EventRx};
use crate::model::Pipeline;

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const MAX_RUNNING: usize = 12;
const MAX_WAITING: usize = 4;

/// What the live block shows, updated from events.
pub(crate) struct LiveState {
    ids: Vec<String>,
    deps: Vec<Vec<usize>>,
    started: Vec<bool>,
    done: Vec<bool>,
    /// Keyed by (step, item), so lines keep the plan's order.
    running: BTreeMap<(usize, Option<usize>), Running>,
}

struct Running {
    since: Instant,
    progress: Option<String>,
}

impl LiveState {
    pub(crate) fn new(pipeline: &Pipeline) -> Self {
        let n = pipeline.steps.len();
        LiveState {
            ids: pipeline.steps.iter().map(|s| s.id.clone()).collect(),
            deps: pipeline.steps.iter().map(|s| s.deps.clone()).collect(),
            started: vec![false; n],
            done: vec![false; n],
            running: BTreeMap::new(),
        }
    }

    pub(crate) fn apply(&mut self, ev: &Event, now: Instant) {
        match ev {
            Event::Started { step, item } => {
                self.started[*step] = true;
                self.running.insert((*step, *item), Running { since: now, progress: None });
            }
            Event::Progress { step, item, message } => {
                if let Some(r) = self.running.get_mut(&(*step, *item)) {
                    r.progress = Some(message.clone());
                }
            }
            Event::Finished { step, .. } => {
                self.done[*step] = true;
                self.running.retain(|(s, _), _| s != step);
            }
            _ => {}
        }
    }

    fn label(&self, step: usize, item: Option<usize>) -> String {
        match item {
            Some(i) => format!("{}[{i}]", self.ids[step]),
            None => self.ids[step].clone(),
        }
    }
}

/// The block's lines at `now`, each at most `width - 1` columns so none wraps.
pub(crate) fn render(state: &LiveState, now: Instant, width: usize, color: bool) -> Vec<String> {
    let p = Paint(color);
    let fit = width.saturating_sub(3).max(10);
    let mut lines = Vec::new();
    for (&(step, item), r) in state.running.iter().take(MAX_RUNNING) {
        let elapsed = now.saturating_duration_since(r.since);
        let frame = SPINNER[(elapsed.as_millis() / 100) as usize % SPINNER.len()];
        let mut text = format!("{} {}", state.label(step, item), clock(elapsed));
        if let Some(progress) = &r.progress {
            // A growing text (`…` first) keeps its newest end when the line is too long.
            let room = fit.saturating_sub(text.chars().count() + 2);
            match progress.strip_prefix('…') {
                Some(_) if progress.chars().count() > room && room > 1 => {
                    let skip = progress.chars().count() + 1 - room;
                    text.push_str(&format!("  …{}", progress.chars().skip(skip).collect::<String>()));
                }
                _ => text.push_str(&format!("  {progress}")),
            }
        }
        lines.push(format!("{} {}", p.yellow(frame), truncate(&text, fit)));
    }
    if state.running.len() > MAX_RUNNING {
        lines.push(p.dim(&format!("  … and {} more running", state.running.len() - MAX_RUNNING)));
    }
    let (mut waiting, mut queued) = (Vec::new(), Vec::new());
    for step in (0..state.ids.len()).filter(|&s| !state.started[s] && !state.done[s]) {
        let open: Vec<&str> =
            state.deps[step].iter().filter(|&&d| !state.done[d]).map(|&d| state.ids[d].as_str()).collect();
        if open.is_empty() {
            queued.push(state.ids[step].as_str());
        } else {
            waiting.push(format!("waiting: {} <- {}", state.ids[step], open.join(", ")));
        }
    }
    let more = waiting.len().saturating_sub(MAX_WAITING);
    for line in waiting.into_iter().take(MAX_WAITING) {
        lines.push(p.dim(&format!("  {}", truncate(&line, fit))));
    }
    if more > 0 {
        lines.push(p.dim(&format!("  … and {more} more waiting")));
    }
    if !queued.is_empty() {
        let line = format!("queued for a free slot: {}", queued.join(", "));
        lines.push(p.dim(&format!("  {}", truncate(&line, fit))));
    }
    lines
}

/// `4s`, `1m05s`: whole seconds, since the spinner already shows it is moving.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Draws until the engine drops its sender, then clears the block.
pub(super) async fn consume(human: Human, mut rx: EventRx) {
    let mut state = LiveState::new(&human.pipeline);
    let mut screen = Screen { drawn: 0, pending: Vec::new() };
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                let ev = super::terminal_safe_event(ev);
                state.apply(&ev, Instant::now());
                // Starts and progress live in the block; everything else stays on screen.
                if !matches!(ev, Event::Started { .. } | Event::Progress { .. }) {
                    screen.pending.extend(human.line(ev));
                }
            }
            _ = tick.tick() => {
                let lines = render(&state, Instant::now(), terminal_width(), human.color);
                screen.draw(&lines);
            }
        }
    }
    screen.draw(&[]);
}

/// What is on the terminal below the permanent lines.
struct Screen {
    drawn: usize,
    pending: Vec<String>,
}

impl Screen {
    /// Replaces the block: moves up over it, clears to the end, prints the pending
    /// permanent lines, then the new block; one write, so the terminal never shows half.
    fn draw(&mut self, block: &[String]) {
        let mut out = String::new();
        if self.drawn > 0 {
            out.push_str(&format!("\x1b[{}A", self.drawn));
        }
        out.push_str("\r\x1b[J");
        for line in self.pending.drain(..).chain(block.iter().cloned()) {
            out.push_str(&line);
            out.push('\n');
        }
        self.drawn = block.len();
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(out.as_bytes());
        let _ = err.flush();
    }
}

fn terminal_width() -> usize {
    let mut size = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we own; fd 2 may be anything.
    let ok = unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 {
        usize::from(size.ws_col)
    } else {
        80
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::events::Status;

    /// ```text
    ///   lyrics ──> song ──┐
    ///   clip ─────────────┴──> video
    /// ```
    fn state() -> LiveState {
        let src = crate::source::Source::new(
            "p.yaml",
            "name: p\nsteps:\n  lyrics: { run: echo }\n  song: { run: echo, needs: lyrics }\n  \
             clip: { run: echo, for_each: [1, 2] }\n  video: { run: echo, needs: [clip, song] }\n",
        );
        let raw = crate::syntax::parse(&src).unwrap();
        LiveState::new(&crate::validate::check(raw, &src, &crate::steps::Registry::from_env()).unwrap())
    }

    fn at(secs: u64, start: Instant) -> Instant {
        start + Duration::from_secs(secs)
    }

    #[test]
    fn running_steps_show_elapsed_time_and_progress_and_waiting_steps_what_they_wait_on() {
        let (mut s, t0) = (state(), Instant::now());
        s.apply(&Event::Started { step: 0, item: None }, t0);
        s.apply(&Event::Started { step: 2, item: Some(0) }, at(2, t0));
        s.apply(&Event::Started { step: 2, item: Some(1) }, at(2, t0));
        s.apply(&Event::Progress { step: 2, item: Some(1), message: "40%".into() }, at(3, t0));
        let lines = render(&s, at(5, t0), 80, false);
        assert_eq!(
            lines,
            [
                "⠋ lyrics 5s",
                "⠋ clip[0] 3s",
                "⠋ clip[1] 3s  40%",
                "  waiting: song <- lyrics",
                "  waiting: video <- song, clip",
            ]
        );
    }

    #[test]
    fn finished_steps_leave_the_block_and_free_their_dependents() {
        let (mut s, t0) = (state(), Instant::now());
        s.apply(&Event::Started { step: 0, item: None }, t0);
        let finished = Event::Finished {
            step: 0,
            status: Status::Succeeded,
            duration: Duration::from_secs(1),
            attempts: 1,
            error: None,
        };
        s.apply(&finished, at(1, t0));
        let lines = render(&s, at(1, t0), 80, false);
        assert_eq!(lines, ["  waiting: video <- song, clip", "  queued for a free slot: song, clip"]);
    }

    #[test]
    fn lines_never_wrap_and_the_spinner_turns_with_time() {
        let (mut s, t0) = (state(), Instant::now());
        s.apply(&Event::Started { step: 0, item: None }, t0);
        s.apply(&Event::Progress { step: 0, item: None, message: "x".repeat(200) }, t0);
        let lines = render(&s, t0 + Duration::from_millis(250), 40, false);
        assert!(lines[0].starts_with("⠹ lyrics 0s  xxx"), "{}", lines[0]);
        assert!(lines.iter().all(|l| l.chars().count() < 40), "{lines:?}");
        assert!(lines[0].ends_with('…'));
    }

    #[test]
    fn a_growing_text_keeps_its_newest_end() {
        let (mut s, t0) = (state(), Instant::now());
        s.apply(&Event::Started { step: 0, item: None }, t0);
        let text = format!("…{}the newest words", "old ".repeat(50));
        s.apply(&Event::Progress { step: 0, item: None, message: text }, t0);
        let lines = render(&s, t0, 40, false);
        assert!(lines[0].starts_with("⠋ lyrics 0s  …"), "{}", lines[0]);
        assert!(lines[0].ends_with("the newest words"), "{}", lines[0]);
        assert!(lines[0].chars().count() < 40, "{}", lines[0]);
    }

    #[test]
    fn long_times_read_as_minutes() {
        assert_eq!(clock(Duration::from_secs(65)), "1m05s");
        assert_eq!(clock(Duration::from_millis(4_900)), "4s");
    }
}
