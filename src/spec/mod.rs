//! The only place that reads input files: TOML text -> raw serde mirrors -> validated types.
//!
//! Every error carries the file, the line and column, and the key at fault.

pub mod mapping;
pub mod network;
pub mod sensitivity;

use serde::de::DeserializeOwned;
use std::fmt;
use std::ops::Range;
use std::path::Path;

/// An input file that could not be read or does not describe a valid object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The key at fault (dotted path where known), or empty.
    pub key: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        } else {
            write!(f, "{}: ", self.file)?;
        }
        if !self.key.is_empty() {
            write!(f, "key '{}': ", self.key)?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for SpecError {}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |p| offset - p - 1) + 1;
    (line, col)
}

impl SpecError {
    pub fn at(
        file: &str,
        text: &str,
        span: Option<Range<usize>>,
        key: &str,
        message: String,
    ) -> Self {
        let (line, column) = span.map_or((0, 0), |s| line_col(text, s.start));
        SpecError {
            file: file.to_string(),
            line,
            column,
            key: key.to_string(),
            message,
        }
    }

    pub fn io(path: &Path, e: &std::io::Error) -> Self {
        SpecError {
            file: path.display().to_string(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read the file: {e}"),
        }
    }
}

/// Reads a file to a string with an error that names it.
pub fn read_text(path: &Path) -> Result<String, SpecError> {
    std::fs::read_to_string(path).map_err(|e| SpecError::io(path, &e))
}

#[derive(serde::Deserialize)]
struct Header {
    format: Option<toml::Spanned<String>>,
    version: Option<toml::Spanned<i64>>,
}

/// Checks the `format` and `version` keys, then deserializes the whole file.
pub fn parse<T: DeserializeOwned>(
    file: &str,
    text: &str,
    format: &str,
    version: i64,
) -> Result<T, SpecError> {
    let header: Header = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
    match header.format {
        None => {
            return Err(SpecError::at(
                file,
                text,
                Some(0..0),
                "format",
                format!("missing key: this file must start with format = \"{format}\""),
            ));
        }
        Some(f) if f.get_ref() != format => {
            return Err(SpecError::at(
                file,
                text,
                Some(f.span()),
                "format",
                format!("expected format = \"{format}\", found \"{}\"", f.get_ref()),
            ));
        }
        Some(_) => {}
    }
    match header.version {
        None => {
            return Err(SpecError::at(
                file,
                text,
                Some(0..0),
                "version",
                format!("missing key: this file needs version = {version}"),
            ));
        }
        Some(v) if *v.get_ref() != version => {
            return Err(SpecError::at(
                file,
                text,
                Some(v.span()),
                "version",
                format!(
                    "unsupported version {} (this build reads version {version})",
                    v.get_ref()
                ),
            ));
        }
        Some(_) => {}
    }
    toml::from_str(text).map_err(|e| toml_error(file, text, &e))
}

fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> SpecError {
    let message = e.message().trim().to_string();
    // serde names the offending key in its message ("unknown field `x`", "missing field `y`").
    let key = message
        .split('`')
        .nth(1)
        .filter(|_| message.contains("field"))
        .unwrap_or("")
        .to_string();
    SpecError::at(file, text, e.span(), &key, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        format: String,
        version: i64,
        x: crate::units::Bits,
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
    }

    #[test]
    fn wrong_version_points_at_the_key() {
        let text = "format = \"f\"\nversion = 7\nx = 3\n";
        let e = parse::<T>("a.toml", text, "f", 1).unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (2, "version"));
    }

    #[test]
    fn out_of_range_value_points_at_its_line() {
        let text = "format = \"f\"\nversion = 1\nx = 40\n";
        let e = parse::<T>("a.toml", text, "f", 1).unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("1..=32"), "{e}");
    }

    #[test]
    fn unknown_key_is_named() {
        let text = "format = \"f\"\nversion = 1\nx = 4\ny = 1\n";
        let e = parse::<T>("a.toml", text, "f", 1).unwrap_err();
        assert_eq!(e.key, "y", "{e}");
        assert_eq!(e.line, 4);
    }
}
