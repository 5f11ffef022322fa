//! Diagnostics: an error in the user's input, with where it is and what to do.
//!
//! Validation gathers every problem before reporting, so a user fixes a file in one pass.
//! Rendering goes through miette, which draws the offending line with a caret.

mod file;

pub use file::read_pipeline;

use std::fmt;
use std::io::IsTerminal;
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};

use crate::source::{Seg, Source, Span};

/// One problem found in a pipeline file or on the command line.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub message: String,
    pub label: Option<String>,
    pub help: Option<String>,
    pub span: Option<Span>,
    pub source: Option<Arc<Source>>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic { message: message.into(), label: None, help: None, span: None, source: None }
    }

    /// Points at the value found at `path` in `source`.
    pub fn at(source: &Arc<Source>, path: &[Seg], message: impl Into<String>) -> Self {
        let span = source.value_span(path);
        Diagnostic::new(message).with_span(source, span)
    }

    /// Points at the key that introduces `path` in `source`.
    pub fn at_key(source: &Arc<Source>, path: &[Seg], message: impl Into<String>) -> Self {
        let span = source.key_span(path);
        Diagnostic::new(message).with_span(source, span)
    }

    pub fn with_span(mut self, source: &Arc<Source>, span: Span) -> Self {
        self.source = Some(source.clone());
        self.span = Some(span);
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// `file:line:col`, when the diagnostic points into a file.
    pub fn location(&self) -> Option<String> {
        let (source, span) = (self.source.as_ref()?, self.span?);
        let (line, col) = source.line_col(span.offset);
        Some(format!("{}:{line}:{col}", source.name()))
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        None // supplied by `Rendered`, which owns a NamedSource
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span?;
        let label = LabeledSpan::new_with_span(
            self.label.clone().or_else(|| Some("here".into())),
            SourceSpan::new(span.offset.into(), span.len),
        );
        Some(Box::new(std::iter::once(label)))
    }
}

/// A diagnostic bundled with a miette source, ready to draw.
struct Rendered<'a> {
    diag: &'a Diagnostic,
    source: Option<NamedSource<String>>,
}

impl fmt::Debug for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.diag, f)
    }
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.diag, f)
    }
}

impl std::error::Error for Rendered<'_> {}

impl miette::Diagnostic for Rendered<'_> {
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        miette::Diagnostic::help(self.diag)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        miette::Diagnostic::labels(self.diag)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
}

/// Whether stderr gets colour: a terminal, and neither `NO_COLOR` nor `CI` says otherwise.
pub fn color_stderr() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Draws one diagnostic: `error: message`, `--> file:line:col`, the line with a caret, help.
pub fn render(diag: &Diagnostic) -> String {
    let theme = if color_stderr() { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1).with_width(100);
    let source =
        diag.source.as_ref().map(|s| NamedSource::new(s.name(), s.text.clone()).with_language("yaml"));
    let rendered = Rendered { diag, source };
    let mut out = String::new();
    if let Some(loc) = diag.location() {
        out.push_str(&format!("error: {loc}: {}\n", diag.message));
    } else {
        out.push_str(&format!("error: {}\n", diag.message));
    }
    let mut body = String::new();
    if handler.render_report(&mut body, &rendered).is_ok() && diag.span.is_some() {
        // miette repeats the message (wrapped over one or more lines) above the box that
        // draws the source; ours above already has it, so start at the box.
        let drawing = body.find('╭').and_then(|i| body[..i].rfind('\n')).map_or("", |i| &body[i + 1..]);
        out.push_str(drawing);
    } else if let Some(help) = &diag.help {
        out.push_str(&format!("  help: {help}\n"));
    }
    out
}

/// Suggests the candidate nearest to `word`, if any is close enough to be a typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.75)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `did you mean `x`?` or a list of what is valid.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str> + Clone) -> String {
    match suggest(word, candidates.clone()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => {
            // A long list helps nobody and, once per problem, made the output quadratic.
            const SHOWN: usize = 12;
            let mut all = candidates.into_iter();
            let shown: Vec<String> = all.by_ref().take(SHOWN).map(|c| format!("`{c}`")).collect();
            let more = all.count();
            if shown.is_empty() {
                "nothing by that name is declared".into()
            } else if more > 0 {
                format!("valid names are {} and {more} more", shown.join(", "))
            } else {
                format!("valid names are {}", shown.join(", "))
            }
        }
    }
}

/// At most this many diagnostics are drawn; the count names the rest.
const DRAWN: usize = 100;

/// Prints diagnostics to stderr, with a count when there are several.
pub fn report(diags: &[Diagnostic]) {
    let mut out = String::new();
    for d in diags.iter().take(DRAWN) {
        out.push_str(&render(d));
        out.push('\n');
    }
    if diags.len() > DRAWN {
        out.push_str(&format!("... and {} more problems not shown\n", diags.len() - DRAWN));
    }
    if diags.len() > 1 {
        out.push_str(&format!("{} problems found; nothing was run\n", diags.len()));
    }
    eprint!("{out}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_name_for_a_typo() {
        assert_eq!(suggest("nedds", ["uses", "with", "needs"]), Some("needs"));
        assert_eq!(suggest("zzz", ["uses", "with", "needs"]), None);
    }

    #[test]
    fn renders_file_line_column_and_the_line() {
        let src = Source::new("p.yaml", "name: x\nsteps:\n  a: { uses: valeu }\n");
        let d = Diagnostic::at(&src, &crate::path!["steps", "a", "uses"], "unknown step kind `valeu`")
            .help("did you mean `value`?");
        let out = render(&d);
        assert!(out.starts_with("error: p.yaml:3:14: unknown step kind `valeu`"), "{out}");
        assert!(out.contains("a: { uses: valeu }"), "{out}");
        assert!(out.contains("did you mean `value`?"), "{out}");
    }
}
