//! Recursive descent over the token stream, with precedence climbing for the three operator
//! families (spanset, field and scalar expressions).
//!
//! Two limits keep every recursive walk of the tree (this parser, `Display`, `Drop`, and the
//! evaluator to come) well inside a thread's stack: the parser recurses at most
//! [`MAX_NESTING`] levels (brackets, prefix operators, right operands), and the tree it builds
//! is at most [`MAX_DEPTH`] nodes deep (long `a && b && c ...` chains build deep trees without
//! deep recursion in the parser, so they are counted separately).

use crate::ast::{
    Aggregate, ArithmeticOp, BinaryOp, ComparisonOp, FieldExpr, Hint, Intrinsic, Literal, Pipeline, Query, ScalarExpr,
    ScalarFilter, SpanKind, SpansetExpr, SpansetOp, Stage, Status, UnaryOp,
};
use crate::error::ParseError;
use crate::lexer::{Token, TokenKind, tokenize};
use crate::metrics_parser::is_metrics_function;

/// How many levels of brackets, prefix operators and right operands a query may nest.
pub const MAX_NESTING: usize = 128;

/// How deep the syntax tree of a query may be.
pub const MAX_DEPTH: usize = 512;

/// Parses a TraceQL query.
pub fn parse(query: &str) -> Result<Query, ParseError> {
    let mut parser = Parser { src: query, tokens: tokenize(query), pos: 0, nesting: 0 };
    parser.query()
}

/// The depth of the subtree just parsed.
type Depth = usize;

pub(crate) struct Parser<'a> {
    src: &'a str,
    /// Ends with an `Eof` or `Error` token, which `pos` never moves past.
    tokens: Vec<Token>,
    pos: usize,
    nesting: usize,
}

impl Parser<'_> {
    // ----- token access -------------------------------------------------------------------

    pub(crate) fn token(&self) -> &Token {
        &self.tokens[self.pos]
    }

    pub(crate) fn peek(&self) -> &TokenKind {
        &self.token().kind
    }

    pub(crate) fn peek_at(&self, ahead: usize) -> &TokenKind {
        &self.tokens[(self.pos + ahead).min(self.tokens.len() - 1)].kind
    }

    pub(crate) fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), TokenKind::Word(w) if w == word)
    }

    pub(crate) fn advance(&mut self) -> Token {
        let token = self.token().clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    /// Consumes a token of `kind`, or fails with "expected {what}".
    pub(crate) fn expect(&mut self, kind: &TokenKind, what: &str) -> Result<Token, ParseError> {
        if self.peek() == kind { Ok(self.advance()) } else { Err(self.expected(what)) }
    }

    // ----- errors ---------------------------------------------------------------------------

    pub(crate) fn error_at(&self, offset: usize, message: String) -> ParseError {
        ParseError::new(self.src, offset, message)
    }

    /// "expected {what}, found {current token}", or the lexing error at the current token.
    pub(crate) fn expected(&self, what: &str) -> ParseError {
        let token = self.token();
        if let TokenKind::Error(message) = &token.kind {
            return self.error_at(token.start, message.clone());
        }
        self.error_at(token.start, format!("expected {what}, found {}", self.describe(token)))
    }

    fn describe(&self, token: &Token) -> String {
        if token.kind == TokenKind::Eof {
            return "end of query".to_owned();
        }
        const MAX_CHARS: usize = 32;
        let text = &self.src[token.start..token.end];
        if text.chars().count() > MAX_CHARS {
            format!("'{}…'", text.chars().take(MAX_CHARS).collect::<String>())
        } else {
            format!("'{text}'")
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(
                self.error_at(self.token().start, format!("the query nests more than {MAX_NESTING} levels deep"))
            );
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.nesting -= 1;
    }

    fn check_depth(&self, depth: Depth, offset: usize) -> Result<Depth, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error_at(offset, format!("the query's expression is more than {MAX_DEPTH} levels deep")));
        }
        Ok(depth)
    }

    // ----- query and pipeline -----------------------------------------------------------------

    fn query(&mut self) -> Result<Query, ParseError> {
        let (pipeline, _) = self.pipeline("at the start of the query")?;
        let metrics = if *self.peek() == TokenKind::Pipe { Some(self.metrics()?) } else { None };
        let mut hints = Vec::new();
        if self.is_word("with") {
            hints = self.hints()?;
            if *self.peek() != TokenKind::Eof {
                return Err(self.expected("end of query"));
            }
        } else if *self.peek() != TokenKind::Eof {
            return Err(self.expected("'|', a spanset operator, 'with (...)' or end of query"));
        }
        Ok(Query { pipeline, metrics, hints })
    }

    fn pipeline(&mut self, after: &str) -> Result<(Pipeline, Depth), ParseError> {
        let (source, mut depth) = self.spanset_expr(0, after)?;
        let mut stages = Vec::new();
        while *self.peek() == TokenKind::Pipe {
            if self.at_metrics_stage() {
                // The metrics stage ends the query; `query` parses it.
                break;
            }
            self.advance();
            let (stage, stage_depth) = self.stage()?;
            stages.push(stage);
            depth = depth.max(stage_depth);
        }
        Ok((Pipeline { source, stages }, depth))
    }

    fn stage(&mut self) -> Result<(Stage, Depth), ParseError> {
        let next_is_paren = *self.peek_at(1) == TokenKind::LParen;
        match self.peek() {
            TokenKind::Word(word) if next_is_paren && (word == "topk" || word == "bottomk") => Err(self.error_at(
                self.token().start,
                format!("{word}() follows a metrics function, e.g. '| rate() by (resource.service.name) | {word}(5)'"),
            )),
            TokenKind::LBrace => {
                let (expr, depth) = self.spanset_expr(0, "after '|'")?;
                Ok((Stage::Spanset(expr), depth))
            }
            TokenKind::LParen if self.parens_open_spanset() => {
                let (expr, depth) = self.spanset_expr(0, "after '|'")?;
                Ok((Stage::Spanset(expr), depth))
            }
            TokenKind::Word(word) if next_is_paren && (word == "by" || word == "select") => {
                let name = word.clone();
                let (fields, depth) = self.field_list(&name)?;
                let stage = if name == "by" { Stage::By(fields) } else { Stage::Select(fields) };
                Ok((stage, depth))
            }
            TokenKind::Word(word) if next_is_paren && word == "coalesce" => {
                self.advance();
                self.advance();
                self.expect(&TokenKind::RParen, "')' (coalesce() takes no arguments)")?;
                Ok((Stage::Coalesce, 1))
            }
            TokenKind::LParen | TokenKind::Minus | TokenKind::Int(_) | TokenKind::Float(_) | TokenKind::Duration(_) => {
                self.scalar_filter()
            }
            TokenKind::Word(word) if is_aggregate(word) => self.scalar_filter(),
            _ => Err(self.expected(
                "a spanset filter, an aggregate (count(), avg(), min(), max(), sum()), by(), select() or coalesce() after '|'",
            )),
        }
    }

    /// Whether the current `|` starts a metrics stage: a metrics function name and `(`.
    pub(crate) fn at_metrics_stage(&self) -> bool {
        *self.peek() == TokenKind::Pipe
            && matches!(self.peek_at(1), TokenKind::Word(word) if is_metrics_function(word))
            && *self.peek_at(2) == TokenKind::LParen
    }

    /// Whether the `(`s at the current position open a spanset expression rather than a
    /// scalar one: the first token after them is `{`.
    fn parens_open_spanset(&self) -> bool {
        let mut ahead = 0;
        while *self.peek_at(ahead) == TokenKind::LParen {
            ahead += 1;
            if self.pos + ahead >= self.tokens.len() {
                return false;
            }
        }
        *self.peek_at(ahead) == TokenKind::LBrace
    }

    /// `name(f, ...)` with at least one field expression; `name` and `(` are current.
    fn field_list(&mut self, name: &str) -> Result<(Vec<FieldExpr>, Depth), ParseError> {
        self.advance();
        self.advance();
        if *self.peek() == TokenKind::RParen {
            return Err(self.error_at(self.token().start, format!("{name}() needs at least one field expression")));
        }
        let mut fields = Vec::new();
        let mut depth = 0;
        loop {
            let after = if fields.is_empty() { "after '('" } else { "after ','" };
            let (field, field_depth) = self.field_expr(0, after)?;
            fields.push(field);
            depth = depth.max(field_depth + 1);
            if *self.peek() == TokenKind::Comma {
                self.advance();
                continue;
            }
            self.expect(&TokenKind::RParen, "an operator, ',' or ')'")?;
            return Ok((fields, depth));
        }
    }

    fn hints(&mut self) -> Result<Vec<Hint>, ParseError> {
        self.advance();
        self.expect(&TokenKind::LParen, "'(' after 'with'")?;
        let mut hints = Vec::new();
        loop {
            let TokenKind::Word(name) = self.peek().clone() else {
                return Err(self.expected("a hint name such as 'most_recent'"));
            };
            self.advance();
            self.expect(&TokenKind::Eq, &format!("'=' after the hint name '{name}'"))?;
            let value = match self.peek() {
                TokenKind::String(s) => Literal::String(s.clone()),
                TokenKind::Int(i) => Literal::Int(*i),
                TokenKind::Float(x) => Literal::Float(*x),
                TokenKind::Duration(d) => Literal::Duration(*d),
                TokenKind::Word(word) if keyword_literal(word).is_some() => keyword_literal(word).expect("checked"),
                _ => return Err(self.expected(&format!("a literal value for the hint '{name}'"))),
            };
            self.advance();
            hints.push(Hint { name, value });
            if *self.peek() == TokenKind::Comma {
                self.advance();
                continue;
            }
            self.expect(&TokenKind::RParen, "',' or ')' after the hint")?;
            return Ok(hints);
        }
    }

    // ----- spanset expressions ----------------------------------------------------------------

    fn spanset_expr(&mut self, min_precedence: u8, after: &str) -> Result<(SpansetExpr, Depth), ParseError> {
        self.enter()?;
        let (mut lhs, mut depth) = self.spanset_primary(after)?;
        while let Some(op) = spanset_op(self.peek()) {
            let precedence = op.precedence();
            if precedence < min_precedence {
                break;
            }
            let op_token = self.advance();
            let (rhs, rhs_depth) = self.spanset_expr(precedence + 1, &format!("after '{}'", op.symbol()))?;
            depth = self.check_depth(depth.max(rhs_depth) + 1, op_token.start)?;
            lhs = SpansetExpr::Op { op, lhs: Box::new(lhs), rhs: Box::new(rhs) };
        }
        self.leave();
        Ok((lhs, depth))
    }

    fn spanset_primary(&mut self, after: &str) -> Result<(SpansetExpr, Depth), ParseError> {
        match self.peek() {
            TokenKind::LBrace => {
                self.advance();
                if *self.peek() == TokenKind::RBrace {
                    self.advance();
                    return Ok((SpansetExpr::Filter(FieldExpr::Literal(Literal::Bool(true))), 1));
                }
                let (expr, depth) = self.field_expr(0, "or '}' after '{'")?;
                self.expect(&TokenKind::RBrace, "an operator or '}'")?;
                Ok((SpansetExpr::Filter(expr), depth + 1))
            }
            TokenKind::LParen => {
                let open = self.advance();
                let (pipeline, depth) = self.pipeline("after '('")?;
                if self.at_metrics_stage() {
                    return Err(self.error_at(
                        self.token().end,
                        "a metrics function ends the whole query; it cannot be inside parentheses".to_owned(),
                    ));
                }
                self.expect(&TokenKind::RParen, "'|', a spanset operator or ')'")?;
                if pipeline.stages.is_empty() {
                    Ok((pipeline.source, depth))
                } else {
                    let depth = self.check_depth(depth + 1, open.start)?;
                    Ok((SpansetExpr::Pipeline(Box::new(pipeline)), depth))
                }
            }
            _ => Err(self.expected(&format!("a spanset filter '{{ ... }}' {after}"))),
        }
    }

    // ----- field expressions --------------------------------------------------------------------

    /// Parses operators binding at least as tight as `min_precedence`; `after` says what
    /// precedes the expression, for the error when no value starts here.
    pub(crate) fn field_expr(&mut self, min_precedence: u8, after: &str) -> Result<(FieldExpr, Depth), ParseError> {
        self.enter()?;
        let (mut lhs, mut depth) = self.field_prefix(after)?;
        while let Some(op) = field_op(self.peek()) {
            let precedence = op.precedence();
            if precedence < min_precedence {
                break;
            }
            let op_token = self.advance();
            let rhs_min = if op.is_right_associative() { precedence } else { precedence + 1 };
            let rhs_start = self.token().start;
            let (rhs, rhs_depth) = self.field_expr(rhs_min, &format!("after '{}'", op.symbol()))?;
            if let (BinaryOp::Regex | BinaryOp::NotRegex, FieldExpr::Literal(Literal::String(pattern))) = (op, &rhs) {
                self.check_regex(pattern, rhs_start)?;
            }
            depth = self.check_depth(depth.max(rhs_depth) + 1, op_token.start)?;
            lhs = FieldExpr::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) };
        }
        self.leave();
        Ok((lhs, depth))
    }

    fn field_prefix(&mut self, after: &str) -> Result<(FieldExpr, Depth), ParseError> {
        let token = self.token().clone();
        let atom = match &token.kind {
            TokenKind::Minus | TokenKind::Bang => {
                self.advance();
                let op = if token.kind == TokenKind::Minus { UnaryOp::Neg } else { UnaryOp::Not };
                // The operand takes the operators that bind tighter than the prefix operator.
                let (expr, depth) = self.field_expr(op.precedence() + 1, &format!("after '{}'", op.symbol()))?;
                let depth = self.check_depth(depth + 1, token.start)?;
                return Ok((FieldExpr::Unary { op, expr: Box::new(expr) }, depth));
            }
            TokenKind::LParen => {
                self.advance();
                let inner = self.field_expr(0, "after '('")?;
                self.expect(&TokenKind::RParen, "an operator or ')'")?;
                return Ok(inner);
            }
            TokenKind::String(s) => FieldExpr::Literal(Literal::String(s.clone())),
            TokenKind::Int(i) => FieldExpr::Literal(Literal::Int(*i)),
            TokenKind::Float(x) => FieldExpr::Literal(Literal::Float(*x)),
            TokenKind::Duration(d) => FieldExpr::Literal(Literal::Duration(*d)),
            TokenKind::Attribute(attribute) => FieldExpr::Attribute(attribute.clone()),
            TokenKind::ScopedIntrinsic(intrinsic) => FieldExpr::Intrinsic(*intrinsic),
            TokenKind::Word(word) => match (keyword_literal(word), Intrinsic::from_keyword(word)) {
                (Some(literal), _) => FieldExpr::Literal(literal),
                (None, Some(intrinsic)) => FieldExpr::Intrinsic(intrinsic),
                (None, None) => {
                    return Err(self.error_at(
                        token.start,
                        format!(
                            "unknown identifier '{word}': attributes need a scope, \
                             e.g. 'span.{word}', 'resource.{word}' or '.{word}'"
                        ),
                    ));
                }
            },
            _ => return Err(self.expected(&format!("a value {after}"))),
        };
        self.advance();
        Ok((atom, 1))
    }

    fn check_regex(&self, pattern: &str, offset: usize) -> Result<(), ParseError> {
        match regex::Regex::new(pattern) {
            Ok(_) => Ok(()),
            Err(error) => {
                // Syntax errors span several lines (pattern, caret, reason); keep the reason.
                let text = error.to_string();
                let reason = text.lines().last().unwrap_or_default();
                let reason = reason.strip_prefix("error: ").unwrap_or(reason);
                Err(self.error_at(offset, format!("invalid regular expression: {reason}")))
            }
        }
    }

    // ----- scalar filters ---------------------------------------------------------------------

    fn scalar_filter(&mut self) -> Result<(Stage, Depth), ParseError> {
        let (lhs, lhs_depth) = self.scalar_expr(0, "after '|'")?;
        let Some(op) = comparison_op(self.peek()) else {
            return Err(self.expected("an arithmetic operator or a comparison (=, !=, <, <=, >, >=)"));
        };
        self.advance();
        let (rhs, rhs_depth) = self.scalar_expr(0, &format!("after '{}'", op.symbol()))?;
        Ok((Stage::ScalarFilter(ScalarFilter { op, lhs, rhs }), lhs_depth.max(rhs_depth) + 1))
    }

    fn scalar_expr(&mut self, min_precedence: u8, after: &str) -> Result<(ScalarExpr, Depth), ParseError> {
        self.enter()?;
        let (mut lhs, mut depth) = self.scalar_prefix(after)?;
        while let Some(op) = arithmetic_op(self.peek()) {
            let binary = op.as_binary();
            let precedence = binary.precedence();
            if precedence < min_precedence {
                break;
            }
            let op_token = self.advance();
            let rhs_min = if binary.is_right_associative() { precedence } else { precedence + 1 };
            let (rhs, rhs_depth) = self.scalar_expr(rhs_min, &format!("after '{}'", op.symbol()))?;
            depth = self.check_depth(depth.max(rhs_depth) + 1, op_token.start)?;
            lhs = ScalarExpr::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) };
        }
        self.leave();
        Ok((lhs, depth))
    }

    fn scalar_prefix(&mut self, after: &str) -> Result<(ScalarExpr, Depth), ParseError> {
        let token = self.token().clone();
        let literal = match &token.kind {
            TokenKind::Minus => {
                self.advance();
                let (expr, depth) = self.scalar_expr(UnaryOp::Neg.precedence() + 1, "after '-'")?;
                let depth = self.check_depth(depth + 1, token.start)?;
                return Ok((ScalarExpr::Neg(Box::new(expr)), depth));
            }
            TokenKind::LParen => {
                self.advance();
                let inner = self.scalar_expr(0, "after '('")?;
                self.expect(&TokenKind::RParen, "an operator or ')'")?;
                return Ok(inner);
            }
            TokenKind::Word(word) if is_aggregate(word) => {
                let name = word.clone();
                return self.aggregate(&name);
            }
            TokenKind::Int(i) => Literal::Int(*i),
            TokenKind::Float(x) => Literal::Float(*x),
            TokenKind::Duration(d) => Literal::Duration(*d),
            _ => return Err(self.expected(&format!("an aggregate such as count() or a number {after}"))),
        };
        self.advance();
        Ok((ScalarExpr::Literal(literal), 1))
    }

    /// `count()`, `avg(f)`, `min(f)`, `max(f)`, `sum(f)`; the name is the current token.
    fn aggregate(&mut self, name: &str) -> Result<(ScalarExpr, Depth), ParseError> {
        self.advance();
        self.expect(&TokenKind::LParen, &format!("'(' after '{name}'"))?;
        if name == "count" {
            if *self.peek() != TokenKind::RParen {
                return Err(self.expected("')' (count() takes no argument)"));
            }
            self.advance();
            return Ok((ScalarExpr::Aggregate(Aggregate::Count), 1));
        }
        if *self.peek() == TokenKind::RParen {
            return Err(
                self.error_at(self.token().start, format!("{name}() needs a field expression, e.g. {name}(duration)"))
            );
        }
        let (field, depth) = self.field_expr(0, "after '('")?;
        self.expect(&TokenKind::RParen, "an operator or ')'")?;
        let aggregate = match name {
            "avg" => Aggregate::Avg(field),
            "min" => Aggregate::Min(field),
            "max" => Aggregate::Max(field),
            _ => Aggregate::Sum(field),
        };
        Ok((ScalarExpr::Aggregate(aggregate), depth + 1))
    }
}

fn is_aggregate(word: &str) -> bool {
    matches!(word, "count" | "avg" | "min" | "max" | "sum")
}

/// The literal a keyword stands for: `true`, `false`, `nil`, status and kind values.
fn keyword_literal(word: &str) -> Option<Literal> {
    Some(match word {
        "true" => Literal::Bool(true),
        "false" => Literal::Bool(false),
        "nil" => Literal::Nil,
        _ => {
            if let Some(status) = Status::ALL.into_iter().find(|s| s.keyword() == word) {
                Literal::Status(status)
            } else {
                Literal::Kind(SpanKind::from_short_name(word)?)
            }
        }
    })
}

fn spanset_op(kind: &TokenKind) -> Option<SpansetOp> {
    Some(match kind {
        TokenKind::AndAnd => SpansetOp::And,
        TokenKind::OrOr => SpansetOp::Or,
        TokenKind::Gt => SpansetOp::Child,
        TokenKind::Lt => SpansetOp::Parent,
        TokenKind::Descendant => SpansetOp::Descendant,
        TokenKind::Ancestor => SpansetOp::Ancestor,
        TokenKind::Tilde => SpansetOp::Sibling,
        TokenKind::UnionChild => SpansetOp::UnionChild,
        TokenKind::UnionParent => SpansetOp::UnionParent,
        TokenKind::UnionDescendant => SpansetOp::UnionDescendant,
        TokenKind::UnionAncestor => SpansetOp::UnionAncestor,
        TokenKind::UnionSibling => SpansetOp::UnionSibling,
        TokenKind::NotChild => SpansetOp::NotChild,
        TokenKind::NotParent => SpansetOp::NotParent,
        TokenKind::NotDescendant => SpansetOp::NotDescendant,
        TokenKind::NotAncestor => SpansetOp::NotAncestor,
        TokenKind::NotRegex => SpansetOp::NotSibling,
        _ => return None,
    })
}

fn field_op(kind: &TokenKind) -> Option<BinaryOp> {
    Some(match kind {
        TokenKind::AndAnd => BinaryOp::And,
        TokenKind::OrOr => BinaryOp::Or,
        TokenKind::Eq => BinaryOp::Eq,
        TokenKind::Neq => BinaryOp::Neq,
        TokenKind::Lt => BinaryOp::Lt,
        TokenKind::Lte => BinaryOp::Lte,
        TokenKind::Gt => BinaryOp::Gt,
        TokenKind::Gte => BinaryOp::Gte,
        TokenKind::Regex => BinaryOp::Regex,
        TokenKind::NotRegex => BinaryOp::NotRegex,
        TokenKind::Plus => BinaryOp::Add,
        TokenKind::Minus => BinaryOp::Sub,
        TokenKind::Star => BinaryOp::Mul,
        TokenKind::Slash => BinaryOp::Div,
        TokenKind::Percent => BinaryOp::Mod,
        TokenKind::Caret => BinaryOp::Pow,
        _ => return None,
    })
}

fn arithmetic_op(kind: &TokenKind) -> Option<ArithmeticOp> {
    Some(match kind {
        TokenKind::Plus => ArithmeticOp::Add,
        TokenKind::Minus => ArithmeticOp::Sub,
        TokenKind::Star => ArithmeticOp::Mul,
        TokenKind::Slash => ArithmeticOp::Div,
        TokenKind::Percent => ArithmeticOp::Mod,
        TokenKind::Caret => ArithmeticOp::Pow,
        _ => return None,
    })
}

fn comparison_op(kind: &TokenKind) -> Option<ComparisonOp> {
    Some(match kind {
        TokenKind::Eq => ComparisonOp::Eq,
        TokenKind::Neq => ComparisonOp::Neq,
        TokenKind::Lt => ComparisonOp::Lt,
        TokenKind::Lte => ComparisonOp::Lte,
        TokenKind::Gt => ComparisonOp::Gt,
        TokenKind::Gte => ComparisonOp::Gte,
        _ => return None,
    })
}
