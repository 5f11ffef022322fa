//! Turns the template expressions of a `run:` script into environment variables.
//!
//! A model's output must never become shell code, so `echo "{{ x }}"` is rewritten to
//! `echo "${CF_1}"` with `CF_1` set to the value: the shell expands it as data, whatever
//! `$(...)`, backticks or quotes it holds. Outside quotes the reference is quoted too
//! (`"${CF_1}"`), so a value is one word; inside single quotes it is not expanded at all.

/// A script with `{{ }}` replaced, and the expressions its variables hold.
#[derive(Debug, PartialEq)]
pub struct Rewritten {
    pub script: String,
    pub vars: Vec<(String, String)>,
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Normal,
    Single,
    Double,
    /// Inside a here-document body; `quoted` bodies are not expanded by the shell.
    HereDoc,
}

pub fn rewrite(script: &str) -> Result<Rewritten, String> {
    let mut out = String::with_capacity(script.len() + 16);
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut state = State::Normal;
    // Here-documents announced on the current line, opened at its end: (delimiter, strip tabs).
    let mut pending: Vec<(String, bool)> = Vec::new();
    let mut heredoc: Option<(String, bool)> = None;
    let bytes = script.as_bytes();
    let mut i = 0;
    while i < script.len() {
        let rest = &script[i..];
        if rest.starts_with("{%") {
            return Err("template blocks `{% ... %}` are not allowed in a `run:` script: \
                        use the shell's own `if`/`for` on values passed in with `{{ ... }}`"
                .into());
        }
        if rest.starts_with("{#") {
            let end = rest.find("#}").ok_or("a `{#` comment is not closed with `#}`")?;
            i += end + 2;
            continue;
        }
        if rest.starts_with("{{") {
            let end = rest.find("}}").ok_or("a `{{` is not closed with `}}`")?;
            let expr = rest[2..end].trim().trim_matches('-').trim();
            if expr.is_empty() {
                return Err("an empty `{{ }}` in the script".into());
            }
            let name = format!("CF_{}", vars.len() + 1);
            match state {
                State::Normal => out.push_str(&format!("\"${{{name}}}\"")),
                _ => out.push_str(&format!("${{{name}}}")),
            }
            vars.push((name, expr.to_owned()));
            i += end + 2;
            continue;
        }
        let c = rest.chars().next().unwrap_or('\0');
        let len = c.len_utf8();
        match state {
            State::Normal => match c {
                '\'' => state = State::Single,
                '"' => state = State::Double,
                '\\' if i + 1 < bytes.len() => {
                    let next_len = script[i + 1..].chars().next().map_or(1, char::len_utf8);
                    out.push_str(&script[i..i + 1 + next_len]);
                    i += 1 + next_len;
                    continue;
                }
                '<' if rest.starts_with("<<") && !rest.starts_with("<<<") => {
                    if let Some((delim, strip, consumed)) = heredoc_start(&rest[2..]) {
                        pending.push((delim, strip));
                        out.push_str(&rest[..2 + consumed]);
                        i += 2 + consumed;
                        continue;
                    }
                }
                '\n' if !pending.is_empty() => {
                    heredoc = Some(pending.remove(0));
                    state = State::HereDoc;
                }
                _ => {}
            },
            State::Single => {
                if c == '\'' {
                    state = State::Normal;
                }
            }
            State::Double => match c {
                '"' => state = State::Normal,
                '\\' if i + 1 < bytes.len() => {
                    let next_len = script[i + 1..].chars().next().map_or(1, char::len_utf8);
                    out.push_str(&script[i..i + 1 + next_len]);
                    i += 1 + next_len;
                    continue;
                }
                _ => {}
            },
            State::HereDoc => {
                if c == '\n' {
                    out.push('\n');
                    i += 1;
                    let line_end = script[i..].find('\n').map_or(script.len(), |n| i + n);
                    let line = &script[i..line_end];
                    if let Some((delim, strip)) = &heredoc {
                        let candidate = if *strip { line.trim_start_matches('\t') } else { line };
                        if candidate == delim {
                            out.push_str(line);
                            i = line_end;
                            heredoc = None;
                            state = State::Normal;
                            if !pending.is_empty() && i < script.len() {
                                // Another here-document on the same command line follows.
                                heredoc = Some(pending.remove(0));
                                state = State::HereDoc;
                            }
                        }
                    }
                    continue;
                }
            }
        }
        out.push_str(&rest[..len]);
        i += len;
    }
    Ok(Rewritten { script: out, vars })
}

/// After `<<`: optional `-`, blanks, then a word, perhaps quoted. Returns (word, strip, bytes read).
fn heredoc_start(s: &str) -> Option<(String, bool, usize)> {
    let mut i = 0;
    let strip = s.starts_with('-');
    if strip {
        i += 1;
    }
    i += s[i..].len() - s[i..].trim_start_matches([' ', '\t']).len();
    let word_len = s[i..].find(|c: char| c.is_whitespace() || ";&|<>()".contains(c)).unwrap_or(s.len() - i);
    if word_len == 0 {
        return None;
    }
    let word = &s[i..i + word_len];
    let delim: String = word.chars().filter(|&c| c != '\'' && c != '"' && c != '\\').collect();
    Some((delim, strip, i + word_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(s: &str) -> String {
        rewrite(s).unwrap().script
    }

    #[test]
    fn values_become_variables_quoted_by_context() {
        let r = rewrite(r#"echo {{ steps.a.outputs.text }} "x {{ inputs.y }}" '{{ inputs.z }}'"#).unwrap();
        assert_eq!(r.script, r#"echo "${CF_1}" "x ${CF_2}" '${CF_3}'"#);
        assert_eq!(r.vars[0], ("CF_1".into(), "steps.a.outputs.text".into()));
        assert_eq!(r.vars[2].1, "inputs.z");
    }

    #[test]
    fn escaped_quotes_do_not_change_the_context() {
        assert_eq!(script(r#"echo \" {{ a }}"#), r#"echo \" "${CF_1}""#);
        assert_eq!(script(r#"echo "a\"b {{ a }}""#), r#"echo "a\"b ${CF_1}""#);
    }

    #[test]
    fn here_documents_expand_without_added_quotes() {
        let s = script("cat <<EOF\nhi {{ a }}\nEOF\necho {{ b }}\n");
        assert_eq!(s, "cat <<EOF\nhi ${CF_1}\nEOF\necho \"${CF_2}\"\n");
    }

    #[test]
    fn template_blocks_are_refused() {
        assert!(rewrite("{% if x %}echo{% endif %}").unwrap_err().contains("not allowed"));
    }
}
