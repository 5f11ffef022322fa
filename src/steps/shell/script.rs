//! Turns the template expressions of a `run:` script into environment variables.
//!
//! A model's output must never become shell code, so `echo "{{ x }}"` is rewritten to
//! `echo "${CF_1}"` with `CF_1` set to the value: the shell expands it as data, whatever
//! `$(...)`, backticks or quotes it holds. Outside quotes the reference is quoted too
//! (`"${CF_1}"`), so a value is one word; inside single quotes it is not expanded at all.
//!
//! The lexer keeps a stack of contexts (comments, quotes, `$( )`, backticks, `${ }`,
//! here-documents, arithmetic), so a `# don't` comment does not flip the quoting of what
//! follows. Where bash evaluates text as arithmetic, quoting does not help (`a[$(cmd)]` runs
//! `cmd`): those variables are named `CF_NUM_n` and must hold plain numbers at run time.

/// A script with `{{ }}` replaced, and the expressions its variables hold.
#[derive(Debug, PartialEq)]
pub struct Rewritten {
    pub script: String,
    pub vars: Vec<(String, String)>,
}

/// Variables named with this prefix sit where bash evaluates text as arithmetic (`$(( ))`,
/// `(( ))`, `[[ x -ge 7 ]]`, array subscripts, `${s:offset}`, `let`, `declare -i`): there an
/// operand like `a[$(cmd)]` runs `cmd`, quoted or not. Their values must be plain numbers,
/// checked before the script starts ([`plain_number`]).
pub const NUMERIC_PREFIX: &str = "CF_NUM_";

/// Whether a value may stand in an arithmetic position: an optionally signed decimal number.
pub fn plain_number(value: &str) -> bool {
    let v = value.trim();
    let v = v.strip_prefix(['-', '+']).unwrap_or(v);
    let (int, frac) = v.split_once('.').unwrap_or((v, "0"));
    !int.is_empty()
        && !frac.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// Where the lexer is: a stack of these, innermost last.
#[derive(Debug, Clone, PartialEq)]
enum Ctx {
    /// Commands: the script itself, `$( )` (`paren` counts open `(`), or backticks.
    Code {
        paren: usize,
        backtick: bool,
    },
    /// `[[ ... ]]`.
    Test,
    Single,
    Double,
    /// `# ...` to the end of the line.
    Comment,
    /// `$(( ))`, `(( ))`, `$[ ]`: all arithmetic.
    Arith {
        paren: usize,
    },
    /// `${ ... }`; `start` is where its text begins in the output.
    Brace {
        depth: usize,
        start: usize,
    },
    /// `name[ ... ]`: arithmetic for indexed arrays.
    Subscript {
        depth: usize,
    },
    /// A here-document body; a quoted delimiter means the shell expands nothing in it.
    /// `code`: the command reading it is a shell or interpreter (`bash <<EOF`).
    HereDoc {
        delim: String,
        strip: bool,
        quoted: bool,
        code: bool,
    },
}

/// Test operators whose operands bash evaluates as arithmetic inside `[[ ]]`.
const ARITH_TESTS: &[&str] = &["-eq", "-ne", "-lt", "-le", "-gt", "-ge", "-v"];

pub fn rewrite(script: &str) -> Result<Rewritten, String> {
    let mut out = String::with_capacity(script.len() + 16);
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut stack = vec![Ctx::Code { paren: 0, backtick: false }];
    // Here-documents announced on the current line, opened at its end.
    let mut pending: Vec<Ctx> = Vec::new();
    // `let ...` or `declare -i ...`: arithmetic to the end of the command.
    let mut arith_command = false;
    let mut i = 0;
    while i < script.len() {
        let rest = &script[i..];
        let top = stack.last().cloned().unwrap_or(Ctx::Code { paren: 0, backtick: false });
        if rest.starts_with("{%") && top != Ctx::Comment {
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
            let numeric = arith_command
                || stack.iter().any(|c| match c {
                    Ctx::Arith { .. } | Ctx::Subscript { .. } => true,
                    Ctx::Brace { start, .. } => brace_is_arithmetic(&out[*start..]),
                    _ => false,
                })
                || stack.iter().rev().find(|c| !matches!(c, Ctx::Double)) == Some(&Ctx::Test)
                    && beside_arith_test(script, i, i + end + 2);
            if let Ctx::HereDoc { code: true, .. } = top {
                return Err(format!(
                    "`{{{{ {expr} }}}}` is in a here-document that a shell or interpreter runs as code, \
                     so a value would execute: pass it as an argument or variable instead"
                ));
            }
            if matches!(top, Ctx::Code { .. } | Ctx::Double | Ctx::Single) {
                if let Some(runner) = runs_as_code(&out) {
                    return Err(format!(
                        "`{{{{ {expr} }}}}` is the code that `{runner}` runs, so a value would execute: \
                         pass it as data instead, e.g. `{runner} 'echo \"$1\"' _ \"{{{{ {expr} }}}}\"`, \
                         or use it directly without `{runner}`"
                    ));
                }
            }
            let n = vars.len() + 1;
            let name = if numeric { format!("{NUMERIC_PREFIX}{n}") } else { format!("CF_{n}") };
            let quoted = matches!(top, Ctx::Code { .. } | Ctx::Test | Ctx::Brace { .. });
            if quoted && !numeric {
                out.push_str(&format!("\"${{{name}}}\""));
            } else {
                out.push_str(&format!("${{{name}}}"));
            }
            vars.push((name, expr.to_owned()));
            i += end + 2;
            continue;
        }
        let c = rest.chars().next().unwrap_or('\0');
        let len = c.len_utf8();
        let prev = out.chars().last();
        let at_word_start = prev.is_none_or(|p| p.is_whitespace() || ";&|()`".contains(p));
        // Shared by every context that expands `$`: opening nested contexts.
        let expands = matches!(
            top,
            Ctx::Code { .. }
                | Ctx::Test
                | Ctx::Double
                | Ctx::Arith { .. }
                | Ctx::Brace { .. }
                | Ctx::Subscript { .. }
        ) || matches!(&top, Ctx::HereDoc { quoted: false, .. });
        let push = |stack: &mut Vec<Ctx>, out: &mut String, text: &str, ctx: Ctx| {
            out.push_str(text);
            stack.push(ctx);
            text.len()
        };
        if expands && c == '\\' && !matches!(top, Ctx::HereDoc { .. }) {
            let next_len = script[i + 1..].chars().next().map_or(0, char::len_utf8);
            out.push_str(&script[i..i + 1 + next_len]);
            i += 1 + next_len;
            continue;
        }
        if expands && rest.starts_with("$((") {
            i += push(&mut stack, &mut out, "$((", Ctx::Arith { paren: 0 });
            continue;
        }
        if expands && rest.starts_with("$(") {
            i += push(&mut stack, &mut out, "$(", Ctx::Code { paren: 0, backtick: false });
            continue;
        }
        if expands && rest.starts_with("${") {
            let start = out.len() + 2;
            i += push(&mut stack, &mut out, "${", Ctx::Brace { depth: 0, start });
            continue;
        }
        if expands && rest.starts_with("$[") {
            i += push(&mut stack, &mut out, "$[", Ctx::Subscript { depth: 0 });
            continue;
        }
        if expands && c == '`' && top != (Ctx::Code { paren: 0, backtick: true }) {
            i += push(&mut stack, &mut out, "`", Ctx::Code { paren: 0, backtick: true });
            continue;
        }
        match top {
            Ctx::Code { paren, backtick } => {
                let depth = stack.len();
                let set = |stack: &mut Vec<Ctx>, paren| stack[depth - 1] = Ctx::Code { paren, backtick };
                match c {
                    '`' if backtick => {
                        stack.pop();
                    }
                    '#' if at_word_start => stack.push(Ctx::Comment),
                    '\'' => stack.push(Ctx::Single),
                    '"' => stack.push(Ctx::Double),
                    '(' if rest.starts_with("((") && at_word_start => {
                        i += push(&mut stack, &mut out, "((", Ctx::Arith { paren: 0 });
                        continue;
                    }
                    '(' => set(&mut stack, paren + 1),
                    ')' if paren > 0 => set(&mut stack, paren - 1),
                    ')' if depth > 1 && !backtick => {
                        stack.pop();
                    }
                    '[' if rest.starts_with("[[") && at_word_start => {
                        i += push(&mut stack, &mut out, "[[", Ctx::Test);
                        continue;
                    }
                    '[' if prev.is_some_and(|p| p.is_ascii_alphanumeric() || p == '_') => {
                        stack.push(Ctx::Subscript { depth: 0 })
                    }
                    ';' | '\n' | '&' | '|' => arith_command = false,
                    _ if at_word_start && starts_arith_command(rest) => arith_command = true,
                    '<' if rest.starts_with("<<") && !rest.starts_with("<<<") => {
                        if let Some((delim, strip, quoted, consumed)) = heredoc_start(&rest[2..]) {
                            // `bash <<EOF`: the body is the interpreter's code.
                            let code =
                                command_word(&out).is_some_and(|w| CODE_RUNNERS.iter().any(|(r, _)| *r == w));
                            pending.push(Ctx::HereDoc { delim, strip, quoted, code });
                            out.push_str(&rest[..2 + consumed]);
                            i += 2 + consumed;
                            continue;
                        }
                    }
                    _ => {}
                }
                if c == '\n' && !pending.is_empty() {
                    out.push('\n');
                    i += 1;
                    stack.push(pending.remove(0));
                    i = close_heredocs(script, i, &mut out, &mut stack, &mut pending);
                    continue;
                }
            }
            Ctx::Test => match c {
                ']' if rest.starts_with("]]") => {
                    out.push_str("]]");
                    stack.pop();
                    i += 2;
                    continue;
                }
                '\'' => stack.push(Ctx::Single),
                '"' => stack.push(Ctx::Double),
                '[' if prev.is_some_and(|p| p.is_ascii_alphanumeric() || p == '_') => {
                    stack.push(Ctx::Subscript { depth: 0 })
                }
                _ => {}
            },
            Ctx::Single => {
                if c == '\'' {
                    stack.pop();
                }
            }
            Ctx::Double => {
                if c == '"' {
                    stack.pop();
                }
            }
            Ctx::Comment => {
                if c == '\n' {
                    // The newline ends the comment and belongs to the code around it.
                    stack.pop();
                    continue;
                }
            }
            Ctx::Arith { paren } => match c {
                ')' if paren == 0 && rest.starts_with("))") => {
                    out.push_str("))");
                    stack.pop();
                    i += 2;
                    continue;
                }
                '(' => *stack.last_mut().expect("non-empty") = Ctx::Arith { paren: paren + 1 },
                ')' => *stack.last_mut().expect("non-empty") = Ctx::Arith { paren: paren.saturating_sub(1) },
                '"' => stack.push(Ctx::Double),
                _ => {}
            },
            Ctx::Brace { depth, start } => match c {
                '}' if depth == 0 => {
                    stack.pop();
                }
                '{' => *stack.last_mut().expect("non-empty") = Ctx::Brace { depth: depth + 1, start },
                '}' => *stack.last_mut().expect("non-empty") = Ctx::Brace { depth: depth - 1, start },
                '\'' if !matches!(stack.get(stack.len().wrapping_sub(2)), Some(Ctx::Double)) => {
                    stack.push(Ctx::Single)
                }
                '"' => stack.push(Ctx::Double),
                '[' => stack.push(Ctx::Subscript { depth: 0 }),
                _ => {}
            },
            Ctx::Subscript { depth } => match c {
                ']' if depth == 0 => {
                    stack.pop();
                }
                '[' => *stack.last_mut().expect("non-empty") = Ctx::Subscript { depth: depth + 1 },
                ']' => *stack.last_mut().expect("non-empty") = Ctx::Subscript { depth: depth - 1 },
                '"' => stack.push(Ctx::Double),
                '\'' => stack.push(Ctx::Single),
                _ => {}
            },
            Ctx::HereDoc { .. } => {
                if c == '\n' {
                    out.push('\n');
                    i += 1;
                    i = close_heredocs(script, i, &mut out, &mut stack, &mut pending);
                    continue;
                }
            }
        }
        out.push_str(&rest[..len]);
        i += len;
    }
    Ok(Rewritten { script: out, vars })
}

/// At the start of a line inside a here-document: copies its closing line when this is one,
/// then opens the next pending here-document of the same command. Returns the new offset.
fn close_heredocs(
    script: &str,
    mut i: usize,
    out: &mut String,
    stack: &mut Vec<Ctx>,
    pending: &mut Vec<Ctx>,
) -> usize {
    let Some(Ctx::HereDoc { delim, strip, .. }) = stack.last().cloned() else { return i };
    let line_end = script[i..].find('\n').map_or(script.len(), |n| i + n);
    let line = &script[i..line_end];
    let candidate = if strip { line.trim_start_matches('\t') } else { line };
    if candidate == delim {
        out.push_str(line);
        i = line_end;
        stack.pop();
        if !pending.is_empty() && i < script.len() {
            out.push('\n');
            i += 1;
            stack.push(pending.remove(0));
            return close_heredocs(script, i, out, stack, pending);
        }
    }
    i
}

/// Commands that run their argument as code, and the flag that introduces that argument
/// (`None`: every argument, as `eval` joins them).
const CODE_RUNNERS: &[(&str, Option<&str>)] = &[
    ("eval", None),
    ("sh", Some("-c")),
    ("bash", Some("-c")),
    ("dash", Some("-c")),
    ("zsh", Some("-c")),
    ("ksh", Some("-c")),
    ("python", Some("-c")),
    ("python3", Some("-c")),
    ("node", Some("-e")),
    ("perl", Some("-e")),
    ("ruby", Some("-e")),
];

/// The first word of the command that `before` (the script so far) ends in.
fn command_word(before: &str) -> Option<&str> {
    let line = &before[before.rfind(['\n', ';', '|', '&', '(']).map_or(0, |i| i + 1)..];
    let word = line.split_whitespace().next()?;
    Some(word.rsplit('/').next().unwrap_or(word))
}

/// When a value placed after `before` (the rewritten script so far) would be the code of
/// `eval`, `sh -c` and the like, the command's name (e.g. `bash -c`).
fn runs_as_code(before: &str) -> Option<String> {
    let line = &before[before.rfind('\n').map_or(0, |i| i + 1)..];
    // Words of the current command, quote-aware; the value's word is the last (or a new one).
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None if c == '\'' || c == '"' => quote = Some(c),
            None if ";|&(`".contains(c) => {
                words.clear();
                word.clear();
            }
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            None => word.push(c),
        }
    }
    let at = words.len();
    for (i, w) in words.iter().enumerate() {
        let name = w.rsplit('/').next().unwrap_or(w);
        let Some((runner, flag)) = CODE_RUNNERS.iter().find(|(r, _)| *r == name) else { continue };
        match flag {
            None if i == 0 => return Some((*runner).to_owned()),
            Some(flag) if at > i + 1 && words[at - 1] == *flag => return Some(format!("{runner} {flag}")),
            _ => {}
        }
    }
    None
}

/// `${name:offset}` and `${name:offset:length}` evaluate arithmetic; `${name:-word}` does not.
fn brace_is_arithmetic(inner: &str) -> bool {
    let name_end =
        inner.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '#')).unwrap_or(inner.len());
    match inner[name_end..].strip_prefix(':') {
        Some(after) => !after.starts_with(['-', '=', '?', '+']),
        None => false,
    }
}

/// `let`, `declare -i`, `typeset -i`, `local -i`, `export -i`, `readonly -i`.
fn starts_arith_command(rest: &str) -> bool {
    let mut words = rest.split_whitespace();
    match words.next() {
        Some("let") => true,
        Some("declare" | "typeset" | "local" | "export" | "readonly") => {
            words.next().is_some_and(|w| w.starts_with('-') && w.contains('i'))
        }
        _ => false,
    }
}

/// Whether the word holding `script[start..end]` is an operand of an arithmetic test.
fn beside_arith_test(script: &str, start: usize, end: usize) -> bool {
    let before = &script[..start];
    let word_start = before.rfind(char::is_whitespace).map_or(0, |n| n + 1);
    let prev = before[..word_start].split_whitespace().next_back();
    let after = &script[end..];
    let word_end = after.find(char::is_whitespace).unwrap_or(after.len());
    let next = after[word_end..].split_whitespace().next();
    prev.is_some_and(|w| ARITH_TESTS.contains(&w)) || next.is_some_and(|w| ARITH_TESTS.contains(&w))
}

/// After `<<`: optional `-`, blanks, then a word, perhaps quoted. Returns (word, strip,
/// quoted, bytes read).
fn heredoc_start(s: &str) -> Option<(String, bool, bool, usize)> {
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
    let quoted = delim.len() != word.len();
    Some((delim, strip, quoted, i + word_len))
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

    fn numeric(s: &str) -> Vec<bool> {
        rewrite(s).unwrap().vars.iter().map(|(n, _)| n.starts_with(NUMERIC_PREFIX)).collect()
    }

    #[test]
    fn arithmetic_positions_take_only_numbers() {
        assert_eq!(numeric("if [[ {{ s }} -ge 7 ]]; then echo; fi"), [true]);
        assert_eq!(numeric("[[ 7 -lt \"{{ s }}\" ]]"), [true]);
        assert_eq!(numeric("[[ \"{{ s }}\" == yes ]]"), [false]);
        assert_eq!(numeric("echo $(( {{ a }} + 1 )) \"$(( {{ b }} ))\""), [true, true]);
        assert_eq!(numeric("(( {{ a }} > 2 )) && echo {{ b }}"), [true, false]);
        assert_eq!(
            numeric("a[{{ i }}]=1; echo ${a[{{ j }}]} ${s:{{ k }}:2} ${x:-{{ d }}}"),
            [true, true, true, false]
        );
        assert_eq!(numeric("let n={{ a }}; echo {{ b }}\ndeclare -i m={{ c }}"), [true, false, true]);
        assert_eq!(numeric("cat <<EOF\n$(( {{ a }} )) {{ b }}\nEOF\n"), [true, false]);
        assert_eq!(script("[[ {{ s }} -ge 7 ]]"), "[[ ${CF_NUM_1} -ge 7 ]]");
    }

    #[test]
    fn plain_numbers_are_digits_with_a_sign_and_a_point() {
        for ok in ["7", " 8\n", "-3", "+2.5", "10.0"] {
            assert!(plain_number(ok), "{ok:?}");
        }
        for bad in ["", "a[$(touch x)]", "1+1", "0x10", "7 ", "1e3", ".5", "5.", "x", "1;2"]
            .iter()
            .filter(|b| b.trim() != "7")
        {
            assert!(!plain_number(bad), "{bad:?}");
        }
    }

    #[test]
    fn comments_do_not_open_quotes() {
        let s = script("# don't do this\necho {{ a }} # it's {{ b }}\necho {{ c }}");
        assert_eq!(s, "# don't do this\necho \"${CF_1}\" # it's ${CF_2}\necho \"${CF_3}\"");
        // `$#` and `${#x}` are not comments.
        assert_eq!(script("echo $# ${#x} {{ a }}"), "echo $# ${#x} \"${CF_1}\"");
    }

    #[test]
    fn command_substitutions_nest_their_own_quoting() {
        assert_eq!(script("echo \"$(echo {{ a }})\""), "echo \"$(echo \"${CF_1}\")\"");
        assert_eq!(script("echo `echo {{ a }}` {{ b }}"), "echo `echo \"${CF_1}\"` \"${CF_2}\"");
        assert_eq!(
            script("x=$(cat <<'E'\n{{ a }}\nE\n)\necho {{ b }}"),
            "x=$(cat <<'E'\n${CF_1}\nE\n)\necho \"${CF_2}\""
        );
    }

    #[test]
    fn a_value_as_the_code_of_eval_or_sh_c_is_refused() {
        for bad in [
            "eval {{ x }}",
            "eval \"echo {{ x }}\"",
            "ok; bash -c \"{{ x }}\"",
            "sh -c 'echo {{ x }}'",
            "/bin/sh -c {{ x }}",
            "python3 -c \"print({{ x }})\"",
            "find . -exec sh -c \"{{ x }}\" \\;",
        ] {
            assert!(rewrite(bad).unwrap_err().contains("would execute"), "{bad}");
        }
        assert!(rewrite("bash <<EOF\necho {{ x }}\nEOF\n").unwrap_err().contains("would execute"));
        assert!(rewrite("cat <<EOF | sort\n{{ x }}\nEOF\n").is_ok());
        for good in [
            "bash -c 'echo \"$1\"' _ \"{{ x }}\"",
            "echo {{ x }} | sh -c 'cat'",
            "evaluate {{ x }}",
            "echo eval {{ x }}",
        ] {
            assert!(rewrite(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn template_blocks_are_refused() {
        assert!(rewrite("{% if x %}echo{% endif %}").unwrap_err().contains("not allowed"));
    }
}
