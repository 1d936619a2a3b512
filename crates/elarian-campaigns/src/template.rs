//! `{{ field }}` rendering and SMS length accounting.
//!
//! A template is compiled once per sending ([`Compiled`]) and rendered once per recipient. A
//! merge field the recipient lacks (absent, `null` or an empty string) is an error naming the
//! field, so that nobody receives `Hi {{name}}` or `Hi ,`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A template split into literal text and merge fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(String),
}

/// Errors compiling or rendering a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{` without a matching `}}`.
    #[error("unclosed `{{{{` at byte {0}")]
    Unclosed(usize),
    /// `{{ }}` with no field name, or a name with characters other than letters, digits, `_`,
    /// `-` and `.`.
    #[error("invalid merge field name {0:?}")]
    InvalidField(String),
    /// The recipient has no value for a merge field.
    #[error("missing merge field `{0}`")]
    MissingField(String),
}

impl Compiled {
    /// Splits `source` into text and `{{ field }}`s (whitespace inside the braces is allowed).
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use elarian_campaigns::template::Compiled;
    /// let t = Compiled::new("Hi {{ first_name }}, you owe {{balance}}").unwrap();
    /// let fields = BTreeMap::from([
    ///     ("first_name".to_string(), serde_json::json!("Ann")),
    ///     ("balance".to_string(), serde_json::json!(120)),
    /// ]);
    /// assert_eq!(t.render(&fields, false).unwrap(), "Hi Ann, you owe 120");
    /// ```
    pub fn new(source: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = source;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or(TemplateError::Unclosed(offset + open))?;
            let name = after[..close].trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(TemplateError::InvalidField(after[..close].to_string()));
            }
            parts.push(Part::Field(name.to_string()));
            let consumed = open + 2 + close + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Compiled { parts })
    }

    /// The merge fields used, in order of first use.
    pub fn fields(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for part in &self.parts {
            if let Part::Field(name) = part
                && !out.contains(&name.as_str())
            {
                out.push(name);
            }
        }
        out
    }

    /// Renders with `fields`; `escape_html` escapes the values (not the template) for HTML bodies.
    pub fn render(
        &self,
        fields: &BTreeMap<String, Value>,
        escape_html: bool,
    ) -> Result<String, TemplateError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field(name) => {
                    let value = match fields.get(name) {
                        None | Some(Value::Null) => None,
                        Some(Value::String(s)) if s.trim().is_empty() => None,
                        Some(Value::String(s)) => Some(std::borrow::Cow::Borrowed(s.as_str())),
                        Some(other) => Some(std::borrow::Cow::Owned(other.to_string())),
                    };
                    let value = value.ok_or_else(|| TemplateError::MissingField(name.clone()))?;
                    if escape_html {
                        escape_into(&mut out, &value);
                    } else {
                        out.push_str(&value);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Appends `text` with `& < > " '` escaped.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// A plain-text version of an HTML body: tags dropped, the common entities decoded.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

/// The character set an SMS is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsEncoding {
    /// The GSM 03.38 7-bit alphabet (with its extension table).
    Gsm7,
    /// UCS-2 (UTF-16 code units), for anything else.
    Ucs2,
}

/// Length and segment count of one SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsInfo {
    /// Encoding.
    pub encoding: SmsEncoding,
    /// Length in the encoding's units (septets for GSM-7, code units for UCS-2).
    pub length: u32,
    /// Number of SMS segments.
    pub segments: u32,
}

const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{000C}";

/// Length and segments of `text` as an SMS: GSM-7 when every character is in the GSM alphabet
/// (extension characters count twice; 160 per single SMS, 153 per part), else UCS-2 (70, 67).
///
/// ```
/// use elarian_campaigns::template::{sms_info, SmsEncoding};
/// assert_eq!(sms_info("Hi Ann").segments, 1);
/// assert_eq!(sms_info(&"a".repeat(161)).segments, 2);
/// assert_eq!(sms_info("Hi 😀").encoding, SmsEncoding::Ucs2);
/// ```
pub fn sms_info(text: &str) -> SmsInfo {
    let mut septets: u32 = 0;
    let mut gsm = true;
    for c in text.chars() {
        if c.is_ascii() && c != '`' && c != '$' && c != '@' && c != '_' && !"^{}\\[~]|".contains(c)
        {
            // Fast path: printable ASCII outside the remapped characters is one septet, as are
            // CR and LF; other control characters are not in the alphabet.
            if c.is_ascii_control() && c != '\n' && c != '\r' {
                gsm = false;
                break;
            }
            septets += 1;
        } else if GSM7_BASIC.contains(c) {
            septets += 1;
        } else if GSM7_EXTENDED.contains(c) {
            septets += 2;
        } else {
            gsm = false;
            break;
        }
    }
    if gsm {
        let segments = if septets <= 160 {
            1
        } else {
            septets.div_ceil(153)
        };
        return SmsInfo {
            encoding: SmsEncoding::Gsm7,
            length: septets,
            segments,
        };
    }
    let units = u32::try_from(text.encode_utf16().count()).unwrap_or(u32::MAX);
    let segments = if units <= 70 { 1 } else { units.div_ceil(67) };
    SmsInfo {
        encoding: SmsEncoding::Ucs2,
        length: units,
        segments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn renders_fields_with_or_without_spaces() {
        let t = Compiled::new("{{a}}-{{ a }}-{{  b\t}}!").unwrap();
        let f = fields(&[("a", json!("x")), ("b", json!(1.5))]);
        assert_eq!(t.render(&f, false).unwrap(), "x-x-1.5!");
        assert_eq!(t.fields(), vec!["a", "b"]);
        let no_fields = Compiled::new("plain text, {single} braces }}").unwrap();
        assert_eq!(
            no_fields.render(&BTreeMap::new(), false).unwrap(),
            "plain text, {single} braces }}"
        );
    }

    #[test]
    fn missing_null_or_empty_fields_are_errors_never_blanks() {
        let t = Compiled::new("Hei {{name}}").unwrap();
        for f in [
            fields(&[]),
            fields(&[("name", Value::Null)]),
            fields(&[("name", json!(""))]),
            fields(&[("name", json!("  "))]),
        ] {
            assert_eq!(
                t.render(&f, false),
                Err(TemplateError::MissingField("name".into()))
            );
        }
        assert_eq!(
            t.render(&fields(&[("name", json!(false))]), false).unwrap(),
            "Hei false"
        );
    }

    #[test]
    fn malformed_templates_are_rejected() {
        assert_eq!(Compiled::new("Hi {{name"), Err(TemplateError::Unclosed(3)));
        assert!(matches!(
            Compiled::new("Hi {{ }}"),
            Err(TemplateError::InvalidField(_))
        ));
        assert!(matches!(
            Compiled::new("Hi {{a b}}"),
            Err(TemplateError::InvalidField(_))
        ));
    }

    #[test]
    fn html_bodies_escape_values_not_markup() {
        let t = Compiled::new("<b>Hei {{name}}</b>").unwrap();
        let f = fields(&[("name", json!("<script>\"x\" & 'y'</script>"))]);
        assert_eq!(
            t.render(&f, true).unwrap(),
            "<b>Hei &lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;</b>"
        );
        assert_eq!(
            html_to_text("<b>Hei &lt;Ann&gt; &amp; co</b>"),
            "Hei <Ann> & co"
        );
    }

    #[test]
    fn sms_segments_for_gsm7_and_ucs2() {
        assert_eq!(
            sms_info(&"a".repeat(160)),
            SmsInfo {
                encoding: SmsEncoding::Gsm7,
                length: 160,
                segments: 1
            }
        );
        assert_eq!(sms_info(&"a".repeat(306)).segments, 2);
        assert_eq!(sms_info(&"a".repeat(307)).segments, 3);
        // Extension characters take two septets.
        let euro = sms_info(&"€".repeat(80));
        assert_eq!(
            (euro.encoding, euro.length, euro.segments),
            (SmsEncoding::Gsm7, 160, 1)
        );
        assert_eq!(sms_info(&"€".repeat(81)).segments, 2);
        // GSM letters outside ASCII stay GSM-7.
        assert_eq!(sms_info("Hei Øyvind, åpent").encoding, SmsEncoding::Gsm7);
        // One character outside the alphabet switches the whole text to UCS-2.
        let ucs = sms_info(&format!("{}ł", "a".repeat(69)));
        assert_eq!(
            (ucs.encoding, ucs.length, ucs.segments),
            (SmsEncoding::Ucs2, 70, 1)
        );
        assert_eq!(sms_info(&"ł".repeat(71)).segments, 2);
        // An emoji is two UTF-16 units.
        assert_eq!(sms_info("😀").length, 2);
        assert_eq!(sms_info("a`b").encoding, SmsEncoding::Ucs2);
    }
}
