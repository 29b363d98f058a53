//! Recursive-descent parser from cleaned tokens to [`Expr`].
//!
//! Precedence, lowest first: comma list; relations (`=`, `<`, `\le`, `\in`, …); set operators (`\cup`, `\cap`,
//! `\setminus`); `+ - \pm`; `* / \cdot \times \div` and juxtaposition; unary minus; `^`; postfix `! % _`.

use super::ast::{Expr, Func, RelOp, SetOp};
use super::lexer::{lex, Tok};

mod commands;
mod literal;
mod sympy;

pub(crate) use literal::number;
use literal::{int, mixed_number, mul, sum, tok_text};

/// Parse failure (the answer is then compared as text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError;

type PResult<T> = Result<T, ParseError>;

/// What the parser found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Parsed {
    pub expr: Expr,
    /// A word of three or more letters that is not a known name occurred: the answer is prose (`Evelyn`, `east`).
    pub has_text: bool,
}

/// Parser settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Syntax {
    /// Accept ASCII names (`sqrt(2)`, `pi`, `sin x`) as a person would; false reads them letter by letter, as a
    /// LaTeX parser does (`pi` = p·i), which is what Qwen2.5-Math's `latex2sympy` path does.
    pub ascii_names: bool,
    /// Read as sympy 1.12's `parse_latex` does, for `--grader qwen`: the longest valid prefix is kept and the rest
    /// dropped (`1,-2` is 1, `4210_{5}` is 4210), a comma or interval inside brackets is an error, set operators
    /// and `\in` end the expression, juxtaposition is always a product (`2\frac{1}{3}` = 2/3), and `\pi`, `e`, `i`
    /// are plain symbols.
    pub sympy: bool,
}

impl Syntax {
    /// servebench's own reading.
    pub(crate) const SERVEBENCH: Syntax = Syntax {
        ascii_names: true,
        sympy: false,
    };
    /// sympy 1.12 `parse_latex`'s reading.
    pub(crate) const SYMPY: Syntax = Syntax {
        ascii_names: false,
        sympy: true,
    };
}

const MAX_DEPTH: usize = 120;
const MAX_TOKENS: usize = 4000;

pub(crate) fn parse(cleaned: &str, syntax: Syntax) -> PResult<Parsed> {
    let (toks, spaced) = if syntax.sympy {
        sympy::tokens(cleaned)?
    } else {
        lex(cleaned)
    };
    if toks.is_empty() || toks.len() > MAX_TOKENS {
        return Err(ParseError);
    }
    let mut p = Parser {
        toks,
        spaced,
        pos: 0,
        depth: 0,
        abs_open: 0,
        has_text: false,
        syntax,
        undo: Vec::new(),
    };
    let expr = p.top()?;
    if p.pos != p.toks.len() && !syntax.sympy {
        return Err(ParseError);
    }
    Ok(Parsed {
        expr,
        has_text: p.has_text,
    })
}

pub(super) struct Parser {
    toks: Vec<Tok>,
    spaced: Vec<bool>,
    pos: usize,
    depth: usize,
    abs_open: usize,
    has_text: bool,
    syntax: Syntax,
    /// Tokens replaced while reading (position, old token, old spacing), for sympy-mode backtracking.
    undo: Vec<(usize, Tok, bool)>,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.pos + k)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn is_sym(&self, c: char) -> bool {
        matches!(self.peek(), Some(Tok::Sym(x)) if *x == c)
    }

    fn is_cmd(&self, name: &str) -> bool {
        matches!(self.peek(), Some(Tok::Cmd(x)) if x == name)
    }

    fn is_word(&self, name: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x == name)
    }

    fn expect_sym(&mut self, c: char) -> PResult<()> {
        if self.is_sym(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(ParseError)
        }
    }

    /// sympy mode: tries to continue an expression with `step`; when the continuation does not parse, the parser
    /// is put back where it was and `None` says "stop here" (the valid prefix is kept, as ANTLR's prediction does
    /// for `parse_latex`). Outside sympy mode the error propagates.
    fn continue_with<T>(
        &mut self,
        step: impl FnOnce(&mut Self) -> PResult<T>,
    ) -> PResult<Option<T>> {
        if !self.syntax.sympy {
            return step(self).map(Some);
        }
        let saved = (self.pos, self.depth, self.abs_open, self.undo.len());
        match step(self) {
            Ok(v) => Ok(Some(v)),
            Err(_) => {
                (self.pos, self.depth, self.abs_open) = (saved.0, saved.1, saved.2);
                while self.undo.len() > saved.3 {
                    if let Some((at, tok, spaced)) = self.undo.pop() {
                        self.toks[at] = tok;
                        self.spaced[at] = spaced;
                    }
                }
                Ok(None)
            }
        }
    }

    /// Replaces the current token by what is left of it after its first character was read (`\frac12`), noting
    /// the old token so that a failed sympy-mode continuation can put it back.
    fn set_tok(&mut self, rest: Tok) {
        let old = std::mem::replace(&mut self.toks[self.pos], rest);
        if self.syntax.sympy {
            self.undo.push((self.pos, old, self.spaced[self.pos]));
        }
        if matches!(self.toks[self.pos], Tok::Num(_)) {
            self.spaced[self.pos] = false;
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(ParseError)
        } else {
            Ok(())
        }
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Top level: a bare comma list is a `List`.
    fn top(&mut self) -> PResult<Expr> {
        if self.syntax.sympy {
            return self.relation();
        }
        let items = self.comma_items()?;
        Ok(if items.len() == 1 {
            items.into_iter().next().ok_or(ParseError)?
        } else {
            Expr::List(items)
        })
    }

    fn at_separator(&self) -> bool {
        if self.syntax.sympy {
            return false;
        }
        self.is_sym(',') || self.is_sym(';') || self.is_word("and") || self.is_word("or")
    }

    fn comma_items(&mut self) -> PResult<Vec<Expr>> {
        let mut items = vec![self.relation()?];
        while self.at_separator() {
            self.pos += 1;
            if self.peek().is_none() {
                break; // trailing comma
            }
            items.push(self.relation()?);
        }
        Ok(items)
    }

    fn rel_op(&self) -> Option<(RelOp, usize)> {
        let op = self.any_rel_op()?;
        if self.syntax.sympy {
            return sympy::relation(self.peek()?, op);
        }
        Some(op)
    }

    fn any_rel_op(&self) -> Option<(RelOp, usize)> {
        match (self.peek()?, self.peek_at(1)) {
            (Tok::Sym('='), _) => Some((RelOp::Eq, 1)),
            (Tok::Sym('<'), Some(Tok::Sym('='))) => Some((RelOp::Le, 2)),
            (Tok::Sym('>'), Some(Tok::Sym('='))) => Some((RelOp::Ge, 2)),
            (Tok::Sym('!'), Some(Tok::Sym('='))) => Some((RelOp::Ne, 2)),
            (Tok::Sym('<'), _) => Some((RelOp::Lt, 1)),
            (Tok::Sym('>'), _) => Some((RelOp::Gt, 1)),
            (Tok::Cmd(c), _) => match c.as_str() {
                "le" | "leqq" => Some((RelOp::Le, 1)),
                "ge" | "geqq" => Some((RelOp::Ge, 1)),
                "lt" => Some((RelOp::Lt, 1)),
                "gt" => Some((RelOp::Gt, 1)),
                "ne" => Some((RelOp::Ne, 1)),
                "in" => Some((RelOp::In, 1)),
                "to" | "rightarrow" | "longrightarrow" => Some((RelOp::To, 1)),
                "approx" | "simeq" => Some((RelOp::Approx, 1)),
                _ => None,
            },
            _ => None,
        }
    }

    fn relation(&mut self) -> PResult<Expr> {
        let first = self.set_expr()?;
        let mut operands = vec![first];
        let mut ops = Vec::new();
        while let Some((op, len)) = self.rel_op() {
            let Some(rhs) = self.continue_with(|p| {
                p.pos += len;
                p.set_expr()
            })?
            else {
                break;
            };
            ops.push(op);
            operands.push(rhs);
        }
        Ok(if ops.is_empty() {
            operands.pop().ok_or(ParseError)?
        } else {
            Expr::Rel(operands, ops)
        })
    }

    fn set_op(&self) -> Option<SetOp> {
        if self.syntax.sympy {
            return None;
        }
        match self.peek()? {
            Tok::Cmd(c) => match c.as_str() {
                "cup" | "bigcup" => Some(SetOp::Union),
                "cap" | "bigcap" => Some(SetOp::Intersect),
                "setminus" | "backslash" => Some(SetOp::Minus),
                _ => None,
            },
            Tok::Word(w) if w == "U" => Some(SetOp::Union),
            _ => None,
        }
    }

    fn set_expr(&mut self) -> PResult<Expr> {
        let mut left = self.additive()?;
        while let Some(op) = self.set_op() {
            self.pos += 1;
            let right = self.additive()?;
            left = Expr::SetOp(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn additive(&mut self) -> PResult<Expr> {
        self.enter()?;
        let first = self.unary()?;
        let mut terms = vec![first];
        let mut pm: Option<(Expr, bool)> = None;
        loop {
            if self.is_sym('+') || self.is_sym('-') {
                let minus = self.is_sym('-');
                let Some(t) = self.continue_with(|p| {
                    p.pos += 1;
                    p.term_after_sign()
                })?
                else {
                    break;
                };
                terms.push(if minus { Expr::Neg(Box::new(t)) } else { t });
            } else if !self.syntax.sympy && (self.is_cmd("pm") || self.is_cmd("mp")) {
                self.pos += 1;
                let t = self.term()?;
                // `a ± b ± c` is rare; the first ± wins, later terms are added to b
                match pm.take() {
                    None => {
                        let base = std::mem::take(&mut terms);
                        pm = Some((sum(base), true));
                        terms.push(t);
                    }
                    Some(x) => {
                        pm = Some(x);
                        terms.push(t);
                    }
                }
            } else {
                break;
            }
        }
        self.leave();
        Ok(match pm {
            None => sum(terms),
            Some((base, _)) => Expr::PlusMinus(Box::new(base), Box::new(sum(terms))),
        })
    }

    fn unary(&mut self) -> PResult<Expr> {
        if self.is_sym('-') {
            self.pos += 1;
            let t = self.term_after_sign()?;
            return Ok(Expr::Neg(Box::new(t)));
        }
        if self.is_sym('+') {
            self.pos += 1;
            return self.term_after_sign();
        }
        if !self.syntax.sympy && (self.is_cmd("pm") || self.is_cmd("mp")) {
            self.pos += 1;
            let t = self.term_after_sign()?;
            return Ok(Expr::PlusMinus(Box::new(int(0)), Box::new(t)));
        }
        self.term()
    }

    fn term_after_sign(&mut self) -> PResult<Expr> {
        self.enter()?;
        let r = self.unary_or_term();
        self.leave();
        r
    }

    fn unary_or_term(&mut self) -> PResult<Expr> {
        if self.is_sym('-') || self.is_sym('+') {
            self.unary()
        } else {
            self.term()
        }
    }

    /// Products, quotients and juxtaposition.
    fn term(&mut self) -> PResult<Expr> {
        self.enter()?;
        let mut acc = self.power()?;
        loop {
            if self.is_sym('*') || self.is_cmd("cdot") || self.is_cmd("times") || self.is_cmd("ast")
            {
                let Some(r) = self.continue_with(|p| {
                    p.pos += 1;
                    p.signed_power()
                })?
                else {
                    break;
                };
                acc = mul(acc, r);
            } else if self.is_sym('/') || self.is_cmd("div") {
                let Some(r) = self.continue_with(|p| {
                    p.pos += 1;
                    p.signed_power()
                })?
                else {
                    break;
                };
                acc = Expr::Div(Box::new(acc), Box::new(r));
            } else if self.starts_factor() {
                let Some(r) = self.continue_with(Self::power)? else {
                    break;
                };
                acc = match mixed_number(&acc, &r).filter(|_| !self.syntax.sympy) {
                    Some(m) => m,
                    None => mul(acc, r),
                };
            } else {
                break;
            }
        }
        self.leave();
        Ok(acc)
    }

    fn signed_power(&mut self) -> PResult<Expr> {
        if self.is_sym('-') {
            self.pos += 1;
            self.enter()?;
            let p = self.signed_power();
            self.leave();
            return Ok(Expr::Neg(Box::new(p?)));
        }
        if self.is_sym('+') {
            self.pos += 1;
        }
        self.power()
    }

    /// Can the next token begin a factor multiplied by juxtaposition?
    fn starts_factor(&self) -> bool {
        match self.peek() {
            Some(Tok::Num(_)) | Some(Tok::Word(_)) => !self.at_separator(),
            Some(Tok::Sym('(')) => true,
            Some(Tok::Sym('|')) => self.abs_open == 0,
            Some(Tok::Cmd(c)) if self.syntax.sympy => !sympy::is_operator(c),
            Some(Tok::Cmd(c)) => !matches!(
                c.as_str(),
                "cdot"
                    | "times"
                    | "div"
                    | "pm"
                    | "mp"
                    | "cup"
                    | "cap"
                    | "setminus"
                    | "le"
                    | "ge"
                    | "lt"
                    | "gt"
                    | "ne"
                    | "in"
                    | "to"
                    | "rightarrow"
                    | "longrightarrow"
                    | "approx"
                    | "simeq"
                    | "}"
                    | "end"
                    | "rfloor"
                    | "rceil"
                    | "%"
                    | "ast"
                    | "backslash"
                    | "bigcup"
                    | "bigcap"
                    | "leqq"
                    | "geqq"
            ),
            _ => false,
        }
    }

    fn power(&mut self) -> PResult<Expr> {
        self.enter()?;
        let base = self.postfix()?;
        let exp = if self.is_sym('^') {
            self.continue_with(|p| {
                p.pos += 1;
                p.exponent()
            })?
        } else {
            None
        };
        let r = if let Some(exp) = exp {
            let mut e = Expr::Pow(Box::new(base), Box::new(exp));
            // postfix after a power: `x^2!` is rare; percent is not
            while self.is_sym('%') || self.is_cmd("%") {
                self.pos += 1;
                e = Expr::Percent(Box::new(e));
            }
            e
        } else {
            base
        };
        self.leave();
        Ok(r)
    }

    /// The exponent after `^`: a braced group, or one token (`x^2`, `x^-1`, `2^\pi`), right-associative.
    fn exponent(&mut self) -> PResult<Expr> {
        self.enter()?;
        let r = self.exponent_inner();
        self.leave();
        r
    }

    fn exponent_inner(&mut self) -> PResult<Expr> {
        if self.is_sym('{') {
            return self.group();
        }
        if self.syntax.sympy {
            // sympy's grammar takes a whole number after `^` (`2^10` = 1024), not one digit as LaTeX does
            if let Some(Tok::Num(n)) = self.peek().cloned() {
                self.pos += 1;
                return number(&n);
            }
        }
        if self.is_sym('-') {
            self.pos += 1;
            let e = self.exponent()?;
            return Ok(Expr::Neg(Box::new(e)));
        }
        let atom = self.single_token_arg()?;
        if self.is_sym('^') {
            self.pos += 1;
            let e = self.exponent()?;
            return Ok(Expr::Pow(Box::new(atom), Box::new(e)));
        }
        Ok(atom)
    }

    fn postfix(&mut self) -> PResult<Expr> {
        let mut e = self.primary()?;
        loop {
            if self.is_sym('!') && !matches!(self.peek_at(1), Some(Tok::Sym('='))) {
                self.pos += 1;
                e = Expr::Call(Func::Factorial, vec![e]);
            } else if self.is_sym('%') || self.is_cmd("%") {
                self.pos += 1;
                e = Expr::Percent(Box::new(e));
            } else if self.is_sym('_') && (!self.syntax.sympy || matches!(e, Expr::Var(_))) {
                // sympy subscripts symbols only: `4210_{5}` stops before `_`
                self.pos += 1;
                let sub = self.subscript_text()?;
                e = match e {
                    Expr::Int(n) => Expr::Based(n.to_string(), sub),
                    Expr::Var(v) => Expr::Var(format!("{v}_{sub}")),
                    Expr::Based(d, b) => Expr::Based(d, format!("{b}_{sub}")),
                    _ => return Err(ParseError),
                };
            } else if self.is_sym('\'') {
                self.pos += 1;
                e = match e {
                    Expr::Var(v) => Expr::Var(format!("{v}'")),
                    _ => return Err(ParseError),
                };
            } else {
                break;
            }
        }
        Ok(e)
    }

    /// The text of a subscript: `_8`, `_{10}`, `_n`, `_{n+1}` (tokens concatenated).
    fn subscript_text(&mut self) -> PResult<String> {
        match self.next() {
            Some(Tok::Sym('{')) => {
                let mut depth = 1;
                let mut out = String::new();
                while let Some(t) = self.next() {
                    match &t {
                        Tok::Sym('{') => depth += 1,
                        Tok::Sym('}') => {
                            depth -= 1;
                            if depth == 0 {
                                return Ok(out);
                            }
                        }
                        _ => {}
                    }
                    out.push_str(&tok_text(&t));
                }
                Err(ParseError)
            }
            Some(Tok::Num(n)) => {
                // `_10` in LaTeX is `_1` then `0`; a base is written `_{10}`, but models write `52_10` too
                Ok(n)
            }
            Some(Tok::Word(w)) => {
                let mut chars = w.chars();
                let first = chars.next().ok_or(ParseError)?;
                let rest: String = chars.collect();
                if !rest.is_empty() {
                    self.pos -= 1;
                    self.set_tok(Tok::Word(rest));
                }
                Ok(first.to_string())
            }
            Some(Tok::Cmd(c)) => Ok(format!("\\{c}")),
            _ => Err(ParseError),
        }
    }

    /// `{ … }` as a group (a list inside braces is a set-like list: `{1, 2}`).
    fn group(&mut self) -> PResult<Expr> {
        self.expect_sym('{')?;
        self.enter()?;
        if self.is_sym('}') && !self.syntax.sympy {
            self.pos += 1;
            self.leave();
            return Ok(Expr::EmptySet);
        }
        let items = self.comma_items()?;
        self.expect_sym('}')?;
        self.leave();
        Ok(if items.len() == 1 {
            items.into_iter().next().ok_or(ParseError)?
        } else {
            Expr::Set(items)
        })
    }

    /// The argument of `\frac`, `\sqrt`, `\binom` without braces: one character of a number or word, or one command.
    fn single_token_arg(&mut self) -> PResult<Expr> {
        match self.peek().cloned() {
            Some(Tok::Sym('{')) => self.group(),
            Some(Tok::Num(n)) => {
                let mut chars = n.chars();
                let first = chars.next().ok_or(ParseError)?;
                let rest: String = chars.collect();
                if first == '.' || rest.is_empty() {
                    self.pos += 1;
                    return number(&n);
                }
                self.set_tok(Tok::Num(rest));
                number(&first.to_string())
            }
            Some(Tok::Word(w)) => {
                let mut chars = w.chars();
                let first = chars.next().ok_or(ParseError)?;
                let rest: String = chars.collect();
                if rest.is_empty() {
                    self.pos += 1;
                } else {
                    self.set_tok(Tok::Word(rest));
                }
                Ok(self.letter(first))
            }
            Some(Tok::Cmd(_)) => self.primary(),
            _ => Err(ParseError),
        }
    }

    fn primary(&mut self) -> PResult<Expr> {
        self.enter()?;
        let r = self.primary_inner();
        self.leave();
        r
    }

    fn primary_inner(&mut self) -> PResult<Expr> {
        let tok = self.next().ok_or(ParseError)?;
        match tok {
            Tok::Num(n) => self.number_with_repeat(&n),
            Tok::Word(w) => self.word(w),
            Tok::Sym('(') => self.bracketed('('),
            Tok::Sym('[') => self.bracketed('['),
            Tok::Sym('{') => {
                self.pos -= 1;
                self.group()
            }
            Tok::Sym('|') => {
                self.abs_open += 1;
                let inner = self.additive();
                self.abs_open -= 1;
                let inner = inner?;
                self.expect_sym('|')?;
                Ok(Expr::Call(Func::Abs, vec![inner]))
            }
            Tok::Cmd(c) => self.command(&c),
            _ => Err(ParseError),
        }
    }
}

#[cfg(test)]
mod tests {
    use num_rational::BigRational;

    use super::*;

    const S: Syntax = Syntax::SERVEBENCH;

    fn p(s: &str) -> Expr {
        parse(s, S).unwrap().expr
    }

    #[test]
    fn basics() {
        assert_eq!(p("\\frac12"), Expr::Div(Box::new(int(1)), Box::new(int(2))));
        assert_eq!(
            p("2\\frac{1}{3}"),
            Expr::Add(vec![int(2), Expr::Div(Box::new(int(1)), Box::new(int(3)))])
        );
        assert_eq!(p("52_8"), Expr::Based("52".into(), "8".into()));
        assert_eq!(p("52_{8}"), Expr::Based("52".into(), "8".into()));
        assert!(matches!(p("[2,5)"), Expr::Interval(true, _, _, false)));
        assert!(matches!(p("(1,2)"), Expr::Tuple(_)));
        assert!(matches!(p("1, -2"), Expr::List(_)));
        assert!(matches!(p("\\{1,2\\}"), Expr::Set(_)));
        assert!(matches!(p("x \\in [2,5)"), Expr::Rel(_, _)));
        assert!(matches!(p("1 \\pm \\sqrt{19}"), Expr::PlusMinus(..)));
        assert!(matches!(
            p("\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
            Expr::Matrix(_)
        ));
        assert!(matches!(
            p("(0,9) \\cup (9,36)"),
            Expr::SetOp(SetOp::Union, ..)
        ));
        assert!(matches!(p("10\\%"), Expr::Percent(_)));
        assert!(matches!(p("sqrt(3)"), Expr::Call(Func::Sqrt, _)));
        assert_eq!(
            p("0.\\overline{3}"),
            Expr::Dec(BigRational::new(1.into(), 3.into()))
        );
        assert!(parse("Evelyn", S).unwrap().has_text);
        assert!(!parse("2ab", S).unwrap().has_text);
        assert!(parse("\\frac{1}{", S).is_err());
        assert!(parse(&"{".repeat(1000), S).is_err());
        assert!(parse(&"2^".repeat(2000), S).is_err());
        assert!(parse(&format!("1*{}1", "-".repeat(3000)), S).is_err());
    }
}
