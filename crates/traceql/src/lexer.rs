//! Splits a query into tokens, each with its byte range in the query.
//!
//! Attributes are whole tokens: the lexer reads `span.http.method`, `.foo`,
//! `parent.resource."a b"` in one piece, because an attribute name may hold characters that
//! are operators elsewhere (`span.content-type`, `.a+b`). A name ends at whitespace or at one
//! of `{ } ( ) = ~ ! < > & | ^ , " \``. Scoped intrinsics (`span:duration`) are whole tokens
//! too. Other words (`duration`, `count`, `ok`, `with`) are [`TokenKind::Word`]s, and the
//! parser gives them a meaning from where they stand.
//!
//! A lexing error ends the token stream with [`TokenKind::Error`]; the parser reports it only
//! when it reaches it, so an earlier syntax error is reported first.

use std::time::Duration;

use crate::ast::{Attribute, AttributeScope, Intrinsic};

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset just past the last character.
    pub end: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TokenKind {
    /// `[A-Za-z_][A-Za-z0-9_]*`, not followed by a scope's `.` or `:`.
    Word(String),
    Attribute(Attribute),
    /// `span:duration`, `trace:id`, ...
    ScopedIntrinsic(Intrinsic),
    String(String),
    Int(i64),
    Float(f64),
    Duration(Duration),
    LBrace,
    RBrace,
    LParen,
    RParen,
    Comma,
    Pipe,
    AndAnd,
    OrOr,
    Bang,
    Eq,
    Neq,
    Regex,
    /// `!~`: not-regex inside a filter, not-sibling between spansets.
    NotRegex,
    Gt,
    Gte,
    Lt,
    Lte,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Caret,
    Tilde,
    Descendant,
    Ancestor,
    UnionChild,
    UnionParent,
    UnionDescendant,
    UnionAncestor,
    UnionSibling,
    NotChild,
    NotParent,
    NotDescendant,
    NotAncestor,
    Eof,
    /// The lexer stopped here; `message` says why.
    Error(String),
}

/// Whether `c` may appear in a bare attribute name.
pub(crate) fn is_attribute_char(c: char) -> bool {
    !c.is_whitespace()
        && !matches!(c, '{' | '}' | '(' | ')' | '=' | '~' | '!' | '<' | '>' | '&' | '|' | '^' | ',' | '"' | '`')
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Punctuation, longest first so that `&>>` wins over `&>`.
const PUNCTUATION: &[(&str, TokenKind)] = &[
    ("&>>", TokenKind::UnionDescendant),
    ("&<<", TokenKind::UnionAncestor),
    ("!>>", TokenKind::NotDescendant),
    ("!<<", TokenKind::NotAncestor),
    ("&&", TokenKind::AndAnd),
    ("||", TokenKind::OrOr),
    ("!=", TokenKind::Neq),
    ("=~", TokenKind::Regex),
    ("!~", TokenKind::NotRegex),
    (">=", TokenKind::Gte),
    ("<=", TokenKind::Lte),
    (">>", TokenKind::Descendant),
    ("<<", TokenKind::Ancestor),
    ("&>", TokenKind::UnionChild),
    ("&<", TokenKind::UnionParent),
    ("&~", TokenKind::UnionSibling),
    ("!>", TokenKind::NotChild),
    ("!<", TokenKind::NotParent),
    ("{", TokenKind::LBrace),
    ("}", TokenKind::RBrace),
    ("(", TokenKind::LParen),
    (")", TokenKind::RParen),
    (",", TokenKind::Comma),
    ("|", TokenKind::Pipe),
    ("!", TokenKind::Bang),
    ("=", TokenKind::Eq),
    (">", TokenKind::Gt),
    ("<", TokenKind::Lt),
    ("+", TokenKind::Plus),
    ("-", TokenKind::Minus),
    ("*", TokenKind::Star),
    ("/", TokenKind::Slash),
    ("%", TokenKind::Percent),
    ("^", TokenKind::Caret),
    ("~", TokenKind::Tilde),
];

/// Splits `src` into tokens. The last token is `Eof` or `Error`.
pub(crate) fn tokenize(src: &str) -> Vec<Token> {
    let mut lexer = Lexer { src, pos: 0 };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_whitespace();
        let start = lexer.pos;
        match lexer.next_kind() {
            Ok(kind) => {
                let done = kind == TokenKind::Eof;
                tokens.push(Token { kind, start, end: lexer.pos });
                if done {
                    return tokens;
                }
            }
            Err((offset, message)) => {
                tokens.push(Token { kind: TokenKind::Error(message), start: offset, end: offset });
                return tokens;
            }
        }
    }
}

/// A lexing failure: byte offset and message.
type LexError = (usize, String);

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn next_kind(&mut self) -> Result<TokenKind, LexError> {
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Ok(TokenKind::Eof);
        };
        if c == '"' || c == '`' {
            return self.string().map(TokenKind::String);
        }
        if c.is_ascii_digit() {
            return self.number();
        }
        if c == '.' {
            self.bump();
            let name = self.attribute_name("'.'")?;
            return Ok(TokenKind::Attribute(Attribute { scope: AttributeScope::None, parent: false, name }));
        }
        if is_word_start(c) {
            return self.word();
        }
        for (text, kind) in PUNCTUATION {
            if self.rest().starts_with(text) {
                self.pos += text.len();
                return Ok(kind.clone());
            }
        }
        Err((start, format!("unexpected character {c:?}")))
    }

    /// A word, or an attribute or scoped intrinsic that starts with a scope word.
    fn word(&mut self) -> Result<TokenKind, LexError> {
        let start = self.pos;
        while self.peek().is_some_and(is_word_char) {
            self.bump();
        }
        let word = &self.src[start..self.pos];
        match self.peek() {
            Some('.') if word == "parent" => {
                self.bump();
                self.parent_attribute(start)
            }
            Some('.') if AttributeScope::from_keyword(word).is_some() => {
                let scope = AttributeScope::from_keyword(word).expect("checked");
                self.bump();
                let name = self.attribute_name(&format!("'{word}.'"))?;
                Ok(TokenKind::Attribute(Attribute { scope, parent: false, name }))
            }
            Some(':') if matches!(word, "span" | "trace" | "event" | "link" | "instrumentation") => {
                self.bump();
                let name_start = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                    self.bump();
                }
                let name = &self.src[name_start..self.pos];
                if name.is_empty() {
                    return Err((self.pos, format!("expected an intrinsic name after '{word}:'")));
                }
                Intrinsic::from_scoped(word, name)
                    .map(TokenKind::ScopedIntrinsic)
                    .ok_or_else(|| (start, format!("unknown intrinsic '{word}:{name}'")))
            }
            _ => Ok(TokenKind::Word(word.to_owned())),
        }
    }

    /// After `parent.`: a scoped name (`span.x`), or an unscoped one (`x`, `"x"`).
    fn parent_attribute(&mut self, start: usize) -> Result<TokenKind, LexError> {
        for scope in AttributeScope::ALL {
            let Some(keyword) = scope.keyword() else { continue };
            if self.rest().strip_prefix(keyword).is_some_and(|after| after.starts_with('.')) {
                self.pos += keyword.len() + 1;
                let name = self.attribute_name(&format!("'parent.{keyword}.'"))?;
                return Ok(TokenKind::Attribute(Attribute { scope, parent: true, name }));
            }
        }
        let quoted = self.peek() == Some('"');
        let name = self.attribute_name("'parent.'")?;
        if !quoted && Intrinsic::from_keyword(&name).is_some() {
            return Err((start, format!("intrinsics of the parent span are not supported: 'parent.{name}'")));
        }
        Ok(TokenKind::Attribute(Attribute { scope: AttributeScope::None, parent: true, name }))
    }

    /// A bare or double-quoted attribute name; `after` names what precedes it, for errors.
    fn attribute_name(&mut self, after: &str) -> Result<String, LexError> {
        let start = self.pos;
        if self.peek() == Some('"') {
            let name = self.string()?;
            if name.is_empty() {
                return Err((start, "attribute name is empty".to_owned()));
            }
            return Ok(name);
        }
        while self.peek().is_some_and(is_attribute_char) {
            self.bump();
        }
        if self.pos == start {
            return Err((start, format!("expected an attribute name after {after}")));
        }
        Ok(self.src[start..self.pos].to_owned())
    }

    /// A `"..."` string with escapes, or a raw `` `...` `` string.
    fn string(&mut self) -> Result<String, LexError> {
        let start = self.pos;
        let quote = self.bump().expect("caller saw a quote");
        let mut value = String::new();
        loop {
            let Some(c) = self.bump() else {
                return Err((start, "unterminated string literal".to_owned()));
            };
            match c {
                c if c == quote => return Ok(value),
                '\\' if quote == '"' => value.push(self.escape()?),
                c => value.push(c),
            }
        }
    }

    /// The character an escape sequence stands for; the `\` is consumed.
    fn escape(&mut self) -> Result<char, LexError> {
        let start = self.pos - 1;
        let Some(c) = self.bump() else {
            return Err((start, "unterminated string literal".to_owned()));
        };
        Ok(match c {
            '"' => '"',
            '\'' => '\'',
            '\\' => '\\',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'v' => '\u{b}',
            'x' | 'u' | 'U' => {
                let digits = match c {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut code = 0u32;
                for _ in 0..digits {
                    let digit = self.peek().and_then(|d| d.to_digit(16));
                    let Some(digit) = digit else {
                        return Err((start, format!("expected {digits} hex digits after '\\{c}'")));
                    };
                    self.bump();
                    code = code * 16 + digit;
                }
                if c == 'x' && code > 0x7f {
                    return Err((start, "'\\x' escapes above \\x7f are not valid UTF-8; use '\\u'".to_owned()));
                }
                char::from_u32(code).ok_or_else(|| (start, format!("invalid Unicode code point U+{code:X}")))?
            }
            c => return Err((start, format!("unknown escape sequence '\\{c}'"))),
        })
    }

    /// An integer, a float (`1.5`, `2e-3`) or a duration (`10ms`, `1.5s`, `1h30m`).
    fn number(&mut self) -> Result<TokenKind, LexError> {
        let start = self.pos;
        let mut is_float = false;
        self.digits();
        if self.peek() == Some('.') && self.peek_second().is_some_and(|c| c.is_ascii_digit()) {
            is_float = true;
            self.bump();
            self.digits();
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let mut probe = self.rest().chars().skip(1);
            let next = probe.next();
            let exponent = match next {
                Some(c) if c.is_ascii_digit() => true,
                Some('+' | '-') => probe.next().is_some_and(|c| c.is_ascii_digit()),
                _ => false,
            };
            if exponent {
                is_float = true;
                self.bump();
                if matches!(self.peek(), Some('+' | '-')) {
                    self.bump();
                }
                self.digits();
            }
        }
        if self.peek().is_some_and(|c| c.is_alphabetic()) {
            // A unit follows: the whole run is a duration.
            self.pos = start;
            while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '.') {
                self.bump();
            }
            let text = &self.src[start..self.pos];
            return parse_duration(text).map(TokenKind::Duration).map_err(|why| (start, why));
        }
        let text = &self.src[start..self.pos];
        if is_float {
            match text.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(TokenKind::Float(x)),
                _ => Err((start, format!("float literal {text} is out of range"))),
            }
        } else {
            text.parse::<i64>()
                .map(TokenKind::Int)
                .map_err(|_| (start, format!("integer literal {text} is out of range (the largest is {})", i64::MAX)))
        }
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
    }
}

/// Parses `1h30m`, `1.5s`, `250ms`, `3µs`: numbers with units `ns`, `us` (`µs`), `ms`, `s`,
/// `m`, `h`, `d`, `w`. The total must be a whole number of nanoseconds, at most `i64::MAX`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    const UNITS: [(&str, u128); 11] = [
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000),
        ("μs", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
        ("d", 86_400_000_000_000),
        ("w", 604_800_000_000_000),
        ("", 0),
    ];
    let invalid = || format!("invalid duration '{text}' (expected a number and a unit: ns, us, µs, ms, s, m, h, d, w)");
    let mut rest = text;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if int_len == 0 {
            return Err(invalid());
        }
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(after) => {
                let frac_len = after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len());
                if frac_len == 0 {
                    return Err(invalid());
                }
                after.split_at(frac_len)
            }
            None => ("", after),
        };
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let Some(&(_, unit_nanos)) = UNITS.iter().find(|(name, _)| *name == unit && !name.is_empty()) else {
            return Err(invalid());
        };
        let too_large = || format!("duration '{text}' is too large (the largest is {} ns)", i64::MAX);
        let whole: u128 = int_part.parse().map_err(|_| too_large())?;
        let mut nanos = whole.checked_mul(unit_nanos).ok_or_else(too_large)?;
        if !frac_part.is_empty() {
            // Exact: fraction digits / 10^len, times the unit, must be a whole number.
            let digits = frac_part.trim_end_matches('0');
            if digits.len() > 30 {
                return Err(format!("duration '{text}' is not a whole number of nanoseconds"));
            }
            let numerator: u128 = if digits.is_empty() { 0 } else { digits.parse().map_err(|_| invalid())? };
            let denominator = 10u128.pow(digits.len() as u32);
            let scaled = numerator.checked_mul(unit_nanos).ok_or_else(too_large)?;
            if !scaled.is_multiple_of(denominator) {
                return Err(format!("duration '{text}' is not a whole number of nanoseconds"));
            }
            nanos = nanos.checked_add(scaled / denominator).ok_or_else(too_large)?;
        }
        total = total.checked_add(nanos).ok_or_else(too_large)?;
        if total > i64::MAX as u128 {
            return Err(too_large());
        }
        rest = after;
    }
    Ok(Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<TokenKind> {
        tokenize(src).into_iter().map(|token| token.kind).collect()
    }

    #[test]
    fn punctuation_takes_the_longest_match() {
        use TokenKind::*;
        assert_eq!(
            kinds("&>> &> &<< &< &~ !>> !> !<< !< !~ != ! >> >= > << <= < =~ = && || |"),
            vec![
                UnionDescendant,
                UnionChild,
                UnionAncestor,
                UnionParent,
                UnionSibling,
                NotDescendant,
                NotChild,
                NotAncestor,
                NotParent,
                NotRegex,
                Neq,
                Bang,
                Descendant,
                Gte,
                Gt,
                Ancestor,
                Lte,
                Lt,
                Regex,
                Eq,
                AndAnd,
                OrOr,
                Pipe,
                Eof
            ]
        );
    }

    #[test]
    fn token_ranges_are_byte_offsets() {
        let tokens = tokenize("{ µ");
        assert_eq!((tokens[0].start, tokens[0].end), (0, 1));
        assert_eq!(tokens[1], Token { kind: TokenKind::Error("unexpected character 'µ'".into()), start: 2, end: 2 });
    }

    #[test]
    fn attribute_names_run_until_a_delimiter() {
        let attribute =
            |scope, parent, name: &str| TokenKind::Attribute(Attribute { scope, parent, name: name.to_owned() });
        assert_eq!(
            kinds("span.http.method="),
            vec![attribute(AttributeScope::Span, false, "http.method"), TokenKind::Eq, TokenKind::Eof]
        );
        assert_eq!(
            kinds(".a-b+c)"),
            vec![attribute(AttributeScope::None, false, "a-b+c"), TokenKind::RParen, TokenKind::Eof]
        );
        assert_eq!(kinds(r#"resource."a b""#), vec![attribute(AttributeScope::Resource, false, "a b"), TokenKind::Eof]);
        assert_eq!(kinds("parent.span.x"), vec![attribute(AttributeScope::Span, true, "x"), TokenKind::Eof]);
        assert_eq!(kinds("parent.spanner"), vec![attribute(AttributeScope::None, true, "spanner"), TokenKind::Eof]);
        assert_eq!(
            kinds(r#"parent."duration""#),
            vec![attribute(AttributeScope::None, true, "duration"), TokenKind::Eof]
        );
        assert_eq!(
            kinds("instrumentation.x"),
            vec![attribute(AttributeScope::Instrumentation, false, "x"), TokenKind::Eof]
        );
    }

    #[test]
    fn numbers_floats_and_durations() {
        use TokenKind::*;
        assert_eq!(kinds("12 1.5 2e3 1.5e-3 7"), vec![Int(12), Float(1.5), Float(2e3), Float(1.5e-3), Int(7), Eof]);
        assert_eq!(
            kinds("1ns 2us 3µs 4ms 5s 6m 7h 1.5s 1h30m 2d 1w"),
            vec![
                Duration(std::time::Duration::from_nanos(1)),
                Duration(std::time::Duration::from_micros(2)),
                Duration(std::time::Duration::from_micros(3)),
                Duration(std::time::Duration::from_millis(4)),
                Duration(std::time::Duration::from_secs(5)),
                Duration(std::time::Duration::from_secs(360)),
                Duration(std::time::Duration::from_secs(7 * 3600)),
                Duration(std::time::Duration::from_millis(1500)),
                Duration(std::time::Duration::from_secs(5400)),
                Duration(std::time::Duration::from_secs(2 * 86400)),
                Duration(std::time::Duration::from_secs(7 * 86400)),
                Eof
            ]
        );
        // `1.` followed by a name is an integer and an attribute, not a float.
        assert_eq!(kinds("1.x")[0], Int(1));
    }

    #[test]
    fn duration_errors() {
        assert_eq!(parse_duration("1.5ns"), Err("duration '1.5ns' is not a whole number of nanoseconds".to_owned()));
        assert!(parse_duration("3x").unwrap_err().starts_with("invalid duration '3x'"));
        assert!(parse_duration("1.s").unwrap_err().starts_with("invalid duration"));
        assert!(parse_duration("300y").unwrap_err().starts_with("invalid duration"));
        assert!(parse_duration("107000d").unwrap_err().contains("too large"));
        assert_eq!(parse_duration("0.000000001s"), Ok(Duration::from_nanos(1)));
    }

    #[test]
    fn string_escapes() {
        assert_eq!(kinds(r#""a\"b\\c\n\t\u00e9\x41""#)[0], TokenKind::String("a\"b\\c\n\té\x41".to_owned()));
        assert_eq!(kinds(r"`\d+`")[0], TokenKind::String(r"\d+".to_owned()));
        assert_eq!(kinds(r#""\q""#)[0], TokenKind::Error(r"unknown escape sequence '\q'".to_owned()));
        assert_eq!(kinds(r#""abc"#)[0], TokenKind::Error("unterminated string literal".to_owned()));
    }

    #[test]
    fn scoped_intrinsics() {
        assert_eq!(kinds("span:duration")[0], TokenKind::ScopedIntrinsic(Intrinsic::Duration));
        assert_eq!(kinds("trace:rootService")[0], TokenKind::ScopedIntrinsic(Intrinsic::RootServiceName));
        assert_eq!(kinds("span:nope")[0], TokenKind::Error("unknown intrinsic 'span:nope'".to_owned()));
    }
}
