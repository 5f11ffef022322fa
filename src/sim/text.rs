//! Deterministic text: chat replies derived from the prompt, lyrics, JSON that fits a
//! requested schema, and embeddings. Same input, same output, so tests can assert on it.

use serde_json::{json, Map, Value};

/// The text of the last message with role `user` (string content or text parts).
pub(crate) fn last_user_text(messages: &[Value]) -> String {
    messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(|m| content_text(m.get("content").unwrap_or(&Value::Null)))
        .unwrap_or_default()
}

/// Text of an OpenAI/Anthropic `content`: a string, or the `text` of its parts.
pub(crate) fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n")
        }
        _ => String::new(),
    }
}

/// All text in a message list, for prompt token counts.
pub(crate) fn all_text(messages: &[Value]) -> String {
    messages
        .iter()
        .map(|m| content_text(m.get("content").unwrap_or(&Value::Null)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn short(prompt: &str) -> String {
    let line = prompt.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    line.chars().take(80).collect()
}

/// A plain reply: lyrics for song requests, otherwise an echo-like sentence.
pub(crate) fn reply(prompt: &str) -> String {
    let lower = prompt.to_lowercase();
    if ["song", "lyric", "music", "verse", "chorus"].iter().any(|w| lower.contains(w)) {
        lyrics(prompt)
    } else {
        format!("Simulated reply to: {}", short(prompt))
    }
}

/// Lyrics with Suno's section markers, mentioning the prompt's subject.
pub(crate) fn lyrics(prompt: &str) -> String {
    let subject = short(prompt);
    let subject = if subject.is_empty() { "the open road".to_owned() } else { subject };
    format!(
        "[Verse]\nWe wrote it down in borrowed light\n{subject}\nA simulated spark tonight\n\n\
         [Chorus]\nSing it once and sing it twice\nEvery note is rolled like dice\n\n\
         [Verse 2]\nThe tape runs out, the signal hums\nAnd still the quiet chorus comes\n\n\
         [Outro]\n{subject}"
    )
}

/// A title for a generated song.
pub(crate) fn title(prompt: &str) -> String {
    let words: Vec<&str> = prompt.split_whitespace().take(4).collect();
    if words.is_empty() {
        "Simulated Song".to_owned()
    } else {
        words.join(" ")
    }
}

/// JSON content for `response_format` `json_object` (no schema) or `json_schema`.
pub(crate) fn json_reply(schema: Option<&Value>, prompt: &str) -> String {
    let value = match schema {
        Some(schema) => value_for_schema(schema, prompt, 0),
        None => json!({"reply": reply(prompt)}),
    };
    value.to_string()
}

/// The first JSON object written in the prompt (`... like {"lines": [...]}`), as the
/// reply: a `json_object` request with an example gets an answer of that shape.
pub(crate) fn example_json(prompt: &str) -> Option<String> {
    prompt.match_indices('{').find_map(|(i, _)| {
        let mut items = serde_json::Deserializer::from_str(&prompt[i..]).into_iter::<Value>();
        match items.next() {
            Some(Ok(value @ Value::Object(_))) => Some(value.to_string()),
            _ => None,
        }
    })
}

/// The simplest value that validates against a JSON schema (enough of the vocabulary for
/// structured outputs: type, properties, items, enum, const, anyOf/oneOf).
pub(crate) fn value_for_schema(schema: &Value, prompt: &str, depth: usize) -> Value {
    if depth > 8 {
        return Value::Null;
    }
    if let Some(value) = schema.get("const") {
        return value.clone();
    }
    if let Some(first) = schema.get("enum").and_then(Value::as_array).and_then(|e| e.first()) {
        return first.clone();
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = schema.get(key).and_then(Value::as_array).and_then(|v| v.first()) {
            return value_for_schema(first, prompt, depth + 1);
        }
    }
    let kind = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        // ["string", "null"]: take the first non-null type.
        Some(Value::Array(types)) => {
            types.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("null")
        }
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match kind {
        "object" => {
            let mut object = Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    object.insert(name.clone(), value_for_schema(sub, prompt, depth + 1));
                }
            }
            Value::Object(object)
        }
        "array" => {
            let item = schema.get("items").unwrap_or(&Value::Null);
            let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(1).max(1);
            Value::Array((0..min).map(|_| value_for_schema(item, prompt, depth + 1)).collect())
        }
        "integer" => json!(schema.get("minimum").and_then(Value::as_i64).unwrap_or(1)),
        "number" => json!(schema.get("minimum").and_then(Value::as_f64).unwrap_or(1.0)),
        "boolean" => json!(true),
        "null" => Value::Null,
        _ => json!(format!("Simulated: {}", short(prompt))),
    }
}

/// A deterministic unit-length vector derived from the text.
pub(crate) fn embedding(text: &str, dimensions: usize) -> Vec<f64> {
    // FNV-1a seeds a small LCG so equal texts get equal vectors.
    let mut state =
        text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let raw: Vec<f64> = (0..dimensions)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            ((state >> 33) as f64 / (1u64 << 31) as f64) - 0.5
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
    raw.into_iter().map(|x| x / norm).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_user_message_is_the_prompt() {
        let messages = [
            json!({"role": "user", "content": "first"}),
            json!({"role": "assistant", "content": "ok"}),
            json!({"role": "user", "content": [{"type": "text", "text": "second"}]}),
        ];
        assert_eq!(last_user_text(&messages), "second");
    }

    #[test]
    fn song_requests_get_lyrics_with_sections() {
        let text = reply("Write a song about rain");
        assert!(text.contains("[Verse]") && text.contains("[Chorus]"), "{text}");
        assert_eq!(reply("hello"), "Simulated reply to: hello");
    }

    #[test]
    fn schema_values_fill_every_property() {
        let schema = json!({"type": "object", "properties": {
            "title": {"type": "string"}, "count": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "mood": {"enum": ["calm", "wild"]}, "maybe": {"type": ["number", "null"]}}});
        let value = value_for_schema(&schema, "p", 0);
        assert!(value["title"].is_string());
        assert_eq!(value["count"], 1);
        assert_eq!(value["tags"].as_array().map(Vec::len), Some(1));
        assert_eq!(value["mood"], "calm");
        assert_eq!(value["maybe"], 1.0);
    }

    #[test]
    fn a_json_example_in_the_prompt_shapes_the_reply() {
        let prompt = r#"Reply as JSON like {"lines": [{"speaker": "host", "text": "Hi"}]} and nothing else."#;
        assert_eq!(example_json(prompt).as_deref(), Some(r#"{"lines":[{"speaker":"host","text":"Hi"}]}"#));
        assert_eq!(example_json("no braces {here"), None);
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embedding("x", 16);
        assert_eq!(a, embedding("x", 16));
        assert_ne!(a, embedding("y", 16));
        let norm: f64 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-9);
    }
}
