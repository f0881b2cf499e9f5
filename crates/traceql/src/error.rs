//! The parse error: where the query went wrong and why.

use std::fmt::Write;

/// A query that does not parse. Displays as `line 1, column 14: expected a value after '=',
/// found '}'`; [`ParseError::render`] adds the query line with a caret under the position.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    /// Byte offset in the query where the problem starts.
    pub offset: usize,
    /// 1-based line of `offset`.
    pub line: usize,
    /// 1-based column of `offset`, counted in characters.
    pub column: usize,
    /// What was expected and what was found, or what is wrong with the token at `offset`.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(query: &str, offset: usize, message: String) -> ParseError {
        let offset = offset.min(query.len());
        let before = &query[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        ParseError { offset, line, column, message }
    }

    /// The error, the query line it is on, and a caret under the position:
    ///
    /// ```text
    /// line 1, column 14: expected a value after '=', found '}'
    ///   { span.foo = }
    ///                ^
    /// ```
    pub fn render(&self, query: &str) -> String {
        let source_line = query.lines().nth(self.line - 1).unwrap_or("");
        let mut out = format!("{self}\n  {source_line}\n  ");
        // Keep tabs so the caret lines up under tab-indented text.
        for c in source_line.chars().take(self.column - 1) {
            out.push(if c == '\t' { '\t' } else { ' ' });
        }
        let _ = write!(out, "^");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let query = "{ .a = \"é\"\n  && }";
        let error = ParseError::new(query, query.find("}").unwrap(), "boom".to_owned());
        assert_eq!((error.line, error.column), (2, 6));
        assert_eq!(error.to_string(), "line 2, column 6: boom");
        assert_eq!(error.render(query), "line 2, column 6: boom\n    && }\n       ^");
    }

    #[test]
    fn render_at_the_end_of_the_query() {
        let error = ParseError::new("{", 1, "expected '}'".to_owned());
        assert_eq!(error.render("{"), "line 1, column 2: expected '}'\n  {\n   ^");
    }
}
