//! Parsing of the metrics stage that ends a query (TraceQL metrics):
//!
//! ```text
//! metrics  = "|" function [ "by" "(" field { "," field } ")" ] [ "|" ( "topk" | "bottomk" ) "(" integer ")" ]
//! function = "rate" "(" ")" | "count_over_time" "(" ")"
//!          | ( "min" | "max" | "avg" | "sum" | "histogram" ) "_over_time" "(" field ")"
//!          | "quantile_over_time" "(" field "," quantile { "," quantile } ")"
//!          | "compare" "(" "{" [ expr ] "}" [ "," integer [ "," integer "," integer ] ] ")"
//! field    = attribute | intrinsic
//! quantile = 0 | 1 | float between 0 and 1, also written ".5" as Tempo accepts it
//! ```
//!
//! As in Tempo, `by()` takes at most [`MAX_METRICS_BY`] fields (one fewer for
//! `quantile_over_time` and `histogram_over_time`, whose bucket takes a place), `compare()`
//! takes no `by()`, and its window is given as both unix-nanosecond ends or not at all.

use crate::ast::{Compare, DEFAULT_COMPARE_TOP_N, FieldExpr, Literal, Metrics, MetricsFunction, SeriesLimit};
use crate::error::ParseError;
use crate::lexer::TokenKind;
use crate::parser::Parser;

/// The most fields a metrics `by()` may hold.
pub const MAX_METRICS_BY: usize = 5;

/// Whether `word` names a metrics function.
pub(crate) fn is_metrics_function(word: &str) -> bool {
    matches!(
        word,
        "rate"
            | "count_over_time"
            | "min_over_time"
            | "max_over_time"
            | "avg_over_time"
            | "sum_over_time"
            | "quantile_over_time"
            | "histogram_over_time"
            | "compare"
    )
}

impl Parser<'_> {
    /// The metrics stage; the current token is the `|` before the function.
    pub(crate) fn metrics(&mut self) -> Result<Metrics, ParseError> {
        self.advance();
        let TokenKind::Word(name) = self.peek().clone() else { unreachable!("checked by at_metrics_stage") };
        self.advance();
        self.expect(&TokenKind::LParen, &format!("'(' after '{name}'"))?;
        let function = match name.as_str() {
            "rate" | "count_over_time" => {
                self.expect(&TokenKind::RParen, &format!("')' ({name}() takes no arguments)"))?;
                if name == "rate" { MetricsFunction::Rate } else { MetricsFunction::CountOverTime }
            }
            "quantile_over_time" => {
                let field = self.metrics_field(&name, "the field")?;
                let mut quantiles = Vec::new();
                while *self.peek() == TokenKind::Comma {
                    self.advance();
                    quantiles.push(self.quantile()?);
                }
                if quantiles.is_empty() {
                    return Err(self.expected("',' and a quantile such as .99 after the field"));
                }
                self.expect(&TokenKind::RParen, "',' or ')' after the quantile")?;
                MetricsFunction::QuantileOverTime { field, quantiles }
            }
            "compare" => MetricsFunction::Compare(self.compare_arguments()?),
            _ => {
                let field = self.metrics_field(&name, "the field")?;
                self.expect(&TokenKind::RParen, &format!("')' ({name}() takes one field)"))?;
                match name.as_str() {
                    "min_over_time" => MetricsFunction::MinOverTime(field),
                    "max_over_time" => MetricsFunction::MaxOverTime(field),
                    "avg_over_time" => MetricsFunction::AvgOverTime(field),
                    "sum_over_time" => MetricsFunction::SumOverTime(field),
                    _ => MetricsFunction::HistogramOverTime(field),
                }
            }
        };
        let mut by = Vec::new();
        if self.is_word("by") && *self.peek_at(1) == TokenKind::LParen {
            let by_start = self.token().start;
            if matches!(function, MetricsFunction::Compare(_)) {
                return Err(self.error_at(by_start, "compare() takes no by(): it splits by every attribute".to_owned()));
            }
            self.advance();
            self.advance();
            loop {
                by.push(self.metrics_field("by", "a field")?);
                if *self.peek() == TokenKind::Comma {
                    self.advance();
                    continue;
                }
                self.expect(&TokenKind::RParen, "',' or ')' after the field")?;
                break;
            }
            let bucketed =
                matches!(function, MetricsFunction::QuantileOverTime { .. } | MetricsFunction::HistogramOverTime(_));
            let max = if bucketed { MAX_METRICS_BY - 1 } else { MAX_METRICS_BY };
            if by.len() > max {
                return Err(self.error_at(
                    by_start,
                    format!("{}() takes at most {max} fields in by(), found {}", function.name(), by.len()),
                ));
            }
        }
        let limit = if *self.peek() == TokenKind::Pipe { Some(self.series_limit()?) } else { None };
        if *self.peek() == TokenKind::Pipe {
            return Err(self.error_at(
                self.token().start,
                "nothing can follow topk() or bottomk() except 'with (...)'".to_owned(),
            ));
        }
        if !matches!(self.peek(), TokenKind::Eof) && !self.is_word("with") {
            let after = if limit.is_some() { "the limit" } else { "the metrics function" };
            return Err(self.expected(&format!(
                "'by (...)', '| topk(n)', '| bottomk(n)', 'with (...)' or end of query after {after}"
            )));
        }
        Ok(Metrics { function, by, limit })
    }

    /// An attribute or intrinsic, as argument of `function`.
    fn metrics_field(&mut self, function: &str, what: &str) -> Result<FieldExpr, ParseError> {
        let start = self.token().start;
        let (field, _) = self.field_expr(0, &format!("as {what} of {function}()"))?;
        match field {
            FieldExpr::Attribute(_) | FieldExpr::Intrinsic(_) => Ok(field),
            _ => Err(self.error_at(
                start,
                format!("{function}() takes an attribute or an intrinsic such as duration, found '{field}'"),
            )),
        }
    }

    /// A quantile: `0`, `1`, `0.99` or `.99`.
    fn quantile(&mut self) -> Result<f64, ParseError> {
        let start = self.token().start;
        let value = match self.peek() {
            TokenKind::Int(i) => *i as f64,
            TokenKind::Float(x) => *x,
            // `.99` lexes as the unscoped attribute `99`.
            TokenKind::Attribute(attribute)
                if !attribute.parent
                    && attribute.scope == crate::ast::AttributeScope::None
                    && attribute.name.bytes().all(|b| b.is_ascii_digit()) =>
            {
                format!("0.{}", attribute.name).parse().expect("digits parse")
            }
            _ => return Err(self.expected("a quantile between 0 and 1, such as .99")),
        };
        if !(0.0..=1.0).contains(&value) {
            return Err(self.error_at(start, format!("a quantile is between 0 and 1, found {value}")));
        }
        self.advance();
        Ok(value)
    }

    /// `{ filter }, top_n, start, end)` of `compare(`.
    fn compare_arguments(&mut self) -> Result<Compare, ParseError> {
        self.expect(&TokenKind::LBrace, "a spanset filter '{ ... }' as the selection of compare()")?;
        let selection = if *self.peek() == TokenKind::RBrace {
            FieldExpr::Literal(Literal::Bool(true))
        } else {
            self.field_expr(0, "or '}' after '{'")?.0
        };
        self.expect(&TokenKind::RBrace, "an operator or '}'")?;
        let mut numbers = Vec::new();
        while *self.peek() == TokenKind::Comma {
            self.advance();
            let start = self.token().start;
            let TokenKind::Int(value) = *self.peek() else {
                return Err(self.expected("an integer argument of compare()"));
            };
            if value <= 0 {
                return Err(self.error_at(start, "compare()'s arguments are positive integers".to_owned()));
            }
            numbers.push((value, start));
            self.advance();
        }
        let end_offset = self.token().start;
        self.expect(&TokenKind::RParen, "',' or ')' in compare()")?;
        let top_n = match numbers.first() {
            Some(&(n, offset)) => u32::try_from(n)
                .map_err(|_| self.error_at(offset, format!("compare()'s top count {n} is too large")))?,
            None => DEFAULT_COMPARE_TOP_N,
        };
        let window = match numbers.as_slice() {
            [] | [_] => None,
            [_, (start, _), (end, end_at)] => {
                if end <= start {
                    return Err(self.error_at(*end_at, "compare()'s end must be after its start".to_owned()));
                }
                Some((*start as u64, *end as u64))
            }
            _ => {
                return Err(self.error_at(
                    end_offset,
                    "compare() takes a filter, a top count, and optionally a start and an end (unix nanoseconds)"
                        .to_owned(),
                ));
            }
        };
        Ok(Compare { selection, top_n, window })
    }

    /// `| topk(n)` or `| bottomk(n)`; the current token is the `|`.
    fn series_limit(&mut self) -> Result<SeriesLimit, ParseError> {
        self.advance();
        let top = match self.peek() {
            TokenKind::Word(word) if word == "topk" => true,
            TokenKind::Word(word) if word == "bottomk" => false,
            _ => return Err(self.expected("topk() or bottomk() after the metrics function")),
        };
        let name = if top { "topk" } else { "bottomk" };
        self.advance();
        self.expect(&TokenKind::LParen, &format!("'(' after '{name}'"))?;
        let start = self.token().start;
        let TokenKind::Int(n) = *self.peek() else {
            return Err(self.expected(&format!("a positive integer in {name}()")));
        };
        let n = u32::try_from(n)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| self.error_at(start, format!("{name}() takes a positive integer, found {n}")))?;
        self.advance();
        self.expect(&TokenKind::RParen, &format!("')' after the count of {name}()"))?;
        Ok(SeriesLimit { top, n })
    }
}

#[cfg(test)]
mod tests {
    use crate::ast::{Attribute, AttributeScope, Intrinsic};
    use crate::parse;

    use super::*;

    /// Parses `text`, checks it prints as `canonical` and that this parses back the same.
    fn canonical(text: &str, canonical: &str) -> Metrics {
        let query = parse(text).unwrap_or_else(|e| panic!("{}", e.render(text)));
        assert_eq!(query.to_string(), canonical, "{text}");
        assert_eq!(parse(canonical).unwrap(), query, "{canonical}");
        query.metrics.expect("a metrics query")
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn metrics_stages_parse_and_print_back() {
        let metrics = canonical("{ } | rate() by (resource.service.name)", "{} | rate() by (resource.service.name)");
        assert_eq!(metrics.function, MetricsFunction::Rate);
        assert_eq!(
            metrics.by,
            vec![FieldExpr::Attribute(Attribute {
                scope: AttributeScope::Resource,
                parent: false,
                name: "service.name".into()
            })]
        );
        let metrics = canonical(
            "{status=error}|quantile_over_time(duration, .5, .99, 1) by (name)|topk(5)",
            "{ status = error } | quantile_over_time(duration, 0.5, 0.99, 1.0) by (name) | topk(5)",
        );
        assert_eq!(
            metrics.function,
            MetricsFunction::QuantileOverTime {
                field: FieldExpr::Intrinsic(Intrinsic::Duration),
                quantiles: vec![0.5, 0.99, 1.0]
            }
        );
        assert_eq!(metrics.limit, Some(SeriesLimit { top: true, n: 5 }));
        canonical(
            "{ } | count_over_time() | bottomk(2) with (sample = true)",
            "{} | count_over_time() | bottomk(2) with (sample = true)",
        );
        canonical("{ } | histogram_over_time(span.size)", "{} | histogram_over_time(span.size)");
        for function in ["min_over_time", "max_over_time", "avg_over_time", "sum_over_time"] {
            canonical(&format!("{{ }} | {function}(duration)"), &format!("{{}} | {function}(duration)"));
        }
        let metrics = canonical("{ } | compare({status=error}, 10)", "{} | compare({ status = error })");
        assert_eq!(
            metrics.function,
            MetricsFunction::Compare(Compare {
                selection: FieldExpr::Binary {
                    op: crate::ast::BinaryOp::Eq,
                    lhs: Box::new(FieldExpr::Intrinsic(Intrinsic::Status)),
                    rhs: Box::new(FieldExpr::Literal(Literal::Status(crate::ast::Status::Error)))
                },
                top_n: 10,
                window: None
            })
        );
        canonical("{ } | compare({}, 3, 10, 20)", "{} | compare({}, 3, 10, 20)");
        canonical("({ .a } >> { .b }) | rate()", "{ .a } >> { .b } | rate()");
    }

    #[test]
    fn queries_grafana_sends_parse() {
        for text in [
            "{nestedSetParent<0 && true} | rate()  with(sample=true)",
            "{nestedSetParent<0 && true && status=error} | rate()  with(sample=true)",
            "{nestedSetParent<0 && true} | histogram_over_time(duration) with(sample=true)",
            "{nestedSetParent<0 && true && resource.service.name != nil} | rate() by(resource.service.name)",
            "{nestedSetParent<0 && true && span.http.route != nil} | quantile_over_time(duration, 0.9) by(span.http.route)",
            "{nestedSetParent<0 && true} | compare({status = error}, 10)",
            "{nestedSetParent<0 && true} | compare({duration >= 1.2s && duration <= 3s}, 10, 1700000000000000000, 1700000060000000000)",
        ] {
            let query = parse(text).unwrap_or_else(|e| panic!("{}", e.render(text)));
            assert!(query.metrics.is_some(), "{text}");
            assert_eq!(parse(&query.to_string()).unwrap(), query, "{text}");
        }
    }

    #[test]
    fn bad_metrics_stages_are_refused_precisely() {
        assert_eq!(
            error("{ } | rate(duration)"),
            "line 1, column 12: expected ')' (rate() takes no arguments), found 'duration'"
        );
        assert_eq!(
            error("{ } | quantile_over_time(duration)"),
            "line 1, column 34: expected ',' and a quantile such as .99 after the field, found ')'"
        );
        assert_eq!(
            error("{ } | quantile_over_time(duration, 1.5)"),
            "line 1, column 36: a quantile is between 0 and 1, found 1.5"
        );
        assert!(error("{ } | avg_over_time(duration + 1)").contains("takes an attribute or an intrinsic"));
        assert!(error("{ } | rate() by (duration > 1s)").contains("by() takes an attribute or an intrinsic"));
        assert!(error("{ } | rate() | topk(0)").contains("topk() takes a positive integer, found 0"));
        assert!(error("{ } | topk(3)").contains("topk() follows a metrics function"));
        assert!(error("{ } | rate() | { .a }").contains("expected topk() or bottomk()"));
        assert!(error("{ } | rate() | topk(1) | topk(1)").contains("nothing can follow"));
        assert!(error("({ } | rate())").contains("cannot be inside parentheses"));
        assert!(error("{ } | compare({ .a }) by (name)").contains("compare() takes no by()"));
        assert!(error("{ } | compare({ .a }, 1, 2)").contains("optionally a start and an end"));
        assert!(error("{ } | compare({ .a }, 1, 20, 10)").contains("end must be after its start"));
        assert!(error("{ } | rate() by (.a, .b, .c, .d, .e, .f)").contains("at most 5 fields"));
        assert!(error("{ } | histogram_over_time(duration) by (.a, .b, .c, .d, .e)").contains("at most 4 fields"));
    }
}
