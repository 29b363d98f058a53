//! sympy 1.12 `parse_latex`'s lexical and command rules, for [`Syntax::SYMPY`](super::Syntax::SYMPY): what its
//! ANTLR lexer accepts, how it reads numbers (`1,000` is one number, `1e5` is 1·e·5), which commands it knows (an
//! unknown `\name` is a symbol of that name: `\pm`, `\in`, `\cup`, `\ne`, `\text`, `\mathbb` multiply like letters)
//! and that `\log` is the natural logarithm.

use super::super::ast::{Expr, Func, RelOp};
use super::super::lexer::{lex, Tok};
use super::{PResult, ParseError, Parser};

/// Characters sympy's LaTeX lexer has no token for: a text containing one does not parse at all (its error listener
/// raises on the lexer error), and Qwen falls back to `parse_expr`.
const NOT_LEXED: &[char] = &['&', '%', '$', '?', '@', '#', '"', ';', '~', ':'];

/// Tokens as sympy's lexer makes them.
pub(super) fn tokens(text: &str) -> PResult<(Vec<Tok>, Vec<bool>)> {
    if text.contains(NOT_LEXED) || text.contains("\\\\") {
        return Err(ParseError);
    }
    let (toks, spaced) = lex(text);
    // `\` before anything but letters and a few spacing/brace characters is not a token either
    let lexed = |t: &Tok| match t {
        Tok::Cmd(c) => {
            c.chars().all(|ch| ch.is_ascii_alphabetic())
                || matches!(c.as_str(), "{" | "}" | "," | ";" | "!" | " " | "|")
        }
        _ => true,
    };
    if !toks.iter().all(lexed) {
        return Err(ParseError);
    }
    let mut out = Vec::with_capacity(toks.len());
    let mut out_spaced = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Num(n) if n.contains(['e', 'E']) => {
                // no exponent notation: `1.5e3` is 1.5·e·3, `1e-3` is 1·e − 3
                let k = n.find(['e', 'E']).unwrap_or(n.len());
                let (mantissa, rest) = n.split_at(k);
                out.push(Tok::Num(mantissa.to_string()));
                out_spaced.push(spaced[i]);
                let mut chars = rest.chars();
                if let Some(e) = chars.next() {
                    out.push(Tok::Word(e.to_string()));
                    out_spaced.push(false);
                }
                let tail: String = chars.collect();
                let digits = tail.trim_start_matches(['+', '-']);
                if let Some(sign) = tail.chars().next().filter(|c| matches!(c, '+' | '-')) {
                    out.push(Tok::Sym(sign));
                    out_spaced.push(false);
                }
                if !digits.is_empty() {
                    out.push(Tok::Num(digits.to_string()));
                    out_spaced.push(false);
                }
                i += 1;
            }
            Tok::Num(n) if !n.contains('.') => {
                // thousands groups belong to the number: `1,000` and `12,345.5`
                let mut n = n.clone();
                let mut j = i + 1;
                while let (Some(Tok::Sym(',')), Some(Tok::Num(g))) = (toks.get(j), toks.get(j + 1))
                {
                    let int_part = g.split('.').next().unwrap_or("");
                    if int_part.len() != 3
                        || !int_part.chars().all(|c| c.is_ascii_digit())
                        || g.contains(['e', 'E'])
                    {
                        break;
                    }
                    n.push_str(g);
                    j += 2;
                    if g.contains('.') {
                        break;
                    }
                }
                out.push(Tok::Num(n));
                out_spaced.push(spaced[i]);
                i = j;
            }
            t => {
                out.push(t.clone());
                out_spaced.push(spaced[i]);
                i += 1;
            }
        }
    }
    Ok((out, out_spaced))
}

/// Commands that join two operands (they cannot start a factor).
pub(super) fn is_operator(c: &str) -> bool {
    matches!(
        c,
        "cdot"
            | "times"
            | "div"
            | "le"
            | "ge"
            | "leq"
            | "geq"
            | "neq"
            | "leqslant"
            | "geqslant"
            | "}"
            | "end"
            | "rfloor"
            | "rceil"
            | "right"
    )
}

/// The relations of sympy's grammar: `=`, `<`, `>`, `\le`, `\leq`, `\ge`, `\geq`, `\neq` (`\ne` and `\in` are
/// symbols there).
pub(super) fn relation(tok: &Tok, op: (RelOp, usize)) -> Option<(RelOp, usize)> {
    match tok {
        Tok::Sym('=' | '<' | '>') => Some(op),
        Tok::Cmd(c) if matches!(c.as_str(), "le" | "leq" | "ge" | "geq" | "neq") => Some(op),
        _ => None,
    }
}

impl Parser {
    /// sympy's reading of a command, or `None` to read it as servebench does (fractions, roots, functions, …).
    pub(super) fn sympy_command(&mut self, c: &str) -> PResult<Option<Expr>> {
        match c {
            "frac" | "dfrac" | "tfrac" | "binom" | "dbinom" | "tbinom" | "sqrt" | "infty"
            | "lfloor" | "lceil" | "exp" | "ln" | "cdot" | "times" | "div" => Ok(None),
            "log" => {
                let base = if self.is_sym('_') {
                    self.pos += 1;
                    self.single_token_arg()?
                } else {
                    Expr::E
                };
                let arg = self.func_arg()?;
                Ok(Some(Expr::Call(Func::Log, vec![base, arg])))
            }
            // `\overline{x}` is conjugate(x): x itself for the real answers met here
            "overline" => self.single_token_arg().map(Some),
            "begin" | "end" | "right" | "left" => Err(ParseError),
            _ if super::commands::func_name_known(c) => Ok(None),
            _ if c.chars().all(|ch| ch.is_ascii_alphabetic()) => Ok(Some(Expr::Var(c.to_string()))),
            _ => Err(ParseError),
        }
    }
}
