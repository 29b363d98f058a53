//! Parser part 2: LaTeX commands (`\\frac`, `\\sqrt`, functions, environments), ASCII names and numbers with
//! repeating decimals.

use num_bigint::BigInt;
use num_traits::Zero;

use super::super::ast::{Expr, Func};
use super::super::lexer::Tok;
use super::literal::{int, mul, number, repeating, tok_text};
use super::{PResult, ParseError, Parser};

impl Parser {
    /// `0.\overline{3}` = 1/3.
    pub(super) fn number_with_repeat(&mut self, n: &str) -> PResult<Expr> {
        if self.syntax.sympy {
            return number(n);
        }
        // `0.\overline{3}`: the lexer left the `.` apart because no digit follows it
        let mut n = n.to_string();
        if self.is_sym('.')
            && matches!(self.peek_at(1), Some(Tok::Cmd(c)) if c == "overline")
            && !n.contains(['.', 'e', 'E'])
        {
            self.pos += 1;
            n.push('.');
        }
        let n = n.as_str();
        if self.is_cmd("overline") {
            if let Some(Tok::Sym('{')) = self.peek_at(1) {
                if let (Some(Tok::Num(rep)), Some(Tok::Sym('}'))) =
                    (self.peek_at(2).cloned(), self.peek_at(3))
                {
                    if rep.chars().all(|c| c.is_ascii_digit()) && !n.contains(['e', 'E']) {
                        self.pos += 4;
                        return repeating(n, &rep);
                    }
                }
            }
        }
        number(n)
    }

    pub(super) fn word(&mut self, w: String) -> PResult<Expr> {
        if self.syntax.ascii_names {
            match w.as_str() {
                "pi" => return Ok(Expr::Pi),
                "infty" | "infinity" | "inf" => return Ok(Expr::Infinity),
                "sqrt" => return self.ascii_call(Func::Sqrt),
                "sin" | "cos" | "tan" | "cot" | "sec" | "csc" | "log" | "ln" | "exp" | "arcsin"
                | "arccos" | "arctan" | "sinh" | "cosh" | "tanh" | "abs" => {
                    if let Some(f) = func_by_name(&w) {
                        return self.ascii_call(f);
                    }
                }
                _ => {}
            }
        }
        if w.len() == 1 {
            return Ok(self.letter(w.chars().next().ok_or(ParseError)?));
        }
        if w.len() >= 3 {
            self.has_text = true;
        }
        // juxtaposed letters multiply: `ab` = a·b
        let factors: Vec<Expr> = w.chars().map(|c| self.letter(c)).collect();
        Ok(Expr::Mul(factors))
    }

    /// `sqrt(2)`, `sqrt 2`, `sin(x)`.
    pub(super) fn ascii_call(&mut self, f: Func) -> PResult<Expr> {
        let arg = if self.is_sym('(') {
            self.pos += 1;
            let e = self.additive()?;
            self.expect_sym(')')?;
            e
        } else {
            self.power()?
        };
        Ok(call1(f, arg))
    }

    /// After `(` or `[`: a group, a tuple or an interval.
    pub(super) fn bracketed(&mut self, open: char) -> PResult<Expr> {
        self.enter()?;
        let saved_abs = self.abs_open;
        self.abs_open = 0;
        let items = self.comma_items();
        self.abs_open = saved_abs;
        let items = items?;
        let close = match self.next() {
            Some(Tok::Sym(c @ (')' | ']'))) => c,
            _ => return Err(ParseError),
        };
        self.leave();
        let mut items = items;
        if open == '(' && close == ')' {
            return Ok(if items.len() == 1 {
                items.pop().ok_or(ParseError)?
            } else {
                Expr::Tuple(items)
            });
        }
        if items.len() == 2 {
            let hi = items.pop().ok_or(ParseError)?;
            let lo = items.pop().ok_or(ParseError)?;
            return Ok(Expr::Interval(
                open == '[',
                Box::new(lo),
                Box::new(hi),
                close == ']',
            ));
        }
        if open == '[' && close == ']' {
            return Ok(if items.len() == 1 {
                items.pop().ok_or(ParseError)?
            } else {
                Expr::Tuple(items)
            });
        }
        Err(ParseError)
    }

    pub(super) fn command(&mut self, c: &str) -> PResult<Expr> {
        if self.syntax.sympy {
            if let Some(e) = self.sympy_command(c)? {
                return Ok(e);
            }
        }
        match c {
            "frac" => {
                let a = self.single_token_arg()?;
                let b = self.single_token_arg()?;
                Ok(Expr::Div(Box::new(a), Box::new(b)))
            }
            "binom" => {
                let a = self.single_token_arg()?;
                let b = self.single_token_arg()?;
                Ok(Expr::Call(Func::Binom, vec![a, b]))
            }
            "sqrt" => {
                if self.is_sym('[') {
                    self.pos += 1;
                    let n = self.additive()?;
                    self.expect_sym(']')?;
                    let x = self.single_token_arg()?;
                    return Ok(Expr::Call(Func::Root, vec![n, x]));
                }
                let x = self.single_token_arg()?;
                Ok(call1(Func::Sqrt, x))
            }
            "pi" if self.syntax.sympy => Ok(Expr::Var("pi".into())),
            "pi" => Ok(Expr::Pi),
            "infty" | "infin" => Ok(Expr::Infinity),
            "emptyset" | "varnothing" => Ok(Expr::EmptySet),
            "{" => {
                if self.is_cmd("}") {
                    self.pos += 1;
                    return Ok(Expr::EmptySet);
                }
                self.enter()?;
                let items = self.comma_items()?;
                if !self.is_cmd("}") {
                    return Err(ParseError);
                }
                self.pos += 1;
                self.leave();
                Ok(Expr::Set(items))
            }
            "mathbb" => {
                let inner = self.subscript_text_braced()?;
                match inner.as_str() {
                    "R" => Ok(Expr::Reals),
                    _ => Ok(Expr::Var(format!("\\mathbb{{{inner}}}"))),
                }
            }
            "lfloor" | "lceil" => {
                let inner = self.additive()?;
                let close = if c == "lfloor" { "rfloor" } else { "rceil" };
                if !self.is_cmd(close) {
                    return Err(ParseError);
                }
                self.pos += 1;
                Ok(call1(
                    if c == "lfloor" {
                        Func::Floor
                    } else {
                        Func::Ceil
                    },
                    inner,
                ))
            }
            "begin" => self.environment(),
            "log" | "lg" => {
                let base = if self.is_sym('_') {
                    self.pos += 1;
                    self.single_token_arg()?
                } else {
                    int(10)
                };
                let arg = self.func_arg()?;
                Ok(Expr::Call(Func::Log, vec![base, arg]))
            }
            "exp" => {
                let arg = self.func_arg()?;
                Ok(call1(Func::Exp, arg))
            }
            "overline" | "bar" | "hat" | "vec" | "tilde" | "widehat" | "overrightarrow" => {
                // decorated symbol: keep as a named variable
                let inner = self.single_token_arg()?;
                Ok(Expr::Var(format!("\\{c}{{{inner:?}}}")))
            }
            _ => {
                if let Some(f) = func_by_name(c) {
                    // `\sin^2 x`
                    let power = if self.is_sym('^') {
                        self.pos += 1;
                        Some(self.exponent()?)
                    } else {
                        None
                    };
                    let arg = self.func_arg()?;
                    let call = call1(f, arg);
                    return Ok(match power {
                        Some(Expr::Neg(one)) if *one == int(1) => inverse(f).map_or(
                            Expr::Pow(
                                Box::new(call.clone()),
                                Box::new(Expr::Neg(Box::new(int(1)))),
                            ),
                            |inv| call1(inv, first_arg(&call)),
                        ),
                        Some(p) => Expr::Pow(Box::new(call), Box::new(p)),
                        None => call,
                    });
                }
                if c.chars().all(|ch| ch.is_ascii_alphabetic()) && !is_structural(c) {
                    // Greek letters and other symbols are names
                    return Ok(Expr::Var(format!("\\{c}")));
                }
                Err(ParseError)
            }
        }
    }

    pub(super) fn subscript_text_braced(&mut self) -> PResult<String> {
        if !self.is_sym('{') {
            return match self.next() {
                Some(Tok::Word(w)) => Ok(w),
                _ => Err(ParseError),
            };
        }
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.next() {
                Some(Tok::Sym('}')) => return Ok(out),
                Some(t) => out.push_str(&tok_text(&t)),
                None => return Err(ParseError),
            }
        }
    }

    /// Argument of `\sin`, `\log`: parenthesised, braced, or a juxtaposed product (`\sin 2x`).
    pub(super) fn func_arg(&mut self) -> PResult<Expr> {
        if self.is_sym('(') || self.is_sym('{') {
            return self.power();
        }
        let mut acc = self.power()?;
        while matches!(self.peek(), Some(Tok::Num(_)) | Some(Tok::Word(_))) && !self.at_separator()
        {
            let r = self.power()?;
            acc = mul(acc, r);
        }
        Ok(acc)
    }

    /// `\begin{pmatrix} … \end{pmatrix}` (also bmatrix, vmatrix as its entries, smallmatrix, array).
    pub(super) fn environment(&mut self) -> PResult<Expr> {
        let name = self.subscript_text_braced()?;
        if name == "array" && self.is_sym('{') {
            self.subscript_text_braced()?; // column spec
        }
        if !matches!(
            name.as_str(),
            "pmatrix" | "bmatrix" | "Bmatrix" | "matrix" | "smallmatrix" | "array" | "vmatrix"
        ) {
            return Err(ParseError);
        }
        self.enter()?;
        let mut rows = Vec::new();
        let mut row = Vec::new();
        loop {
            if self.is_cmd("end") {
                self.pos += 1;
                let end = self.subscript_text_braced()?;
                if end != name {
                    return Err(ParseError);
                }
                if !row.is_empty() {
                    rows.push(std::mem::take(&mut row));
                }
                break;
            }
            if matches!(self.peek(), Some(Tok::RowSep)) {
                self.pos += 1;
                if !row.is_empty() {
                    rows.push(std::mem::take(&mut row));
                }
                continue;
            }
            if self.is_sym('&') {
                self.pos += 1;
                continue;
            }
            if self.peek().is_none() {
                return Err(ParseError);
            }
            row.push(self.relation()?);
        }
        self.leave();
        if rows.is_empty() || rows.iter().any(|r| r.len() != rows[0].len()) {
            return Err(ParseError);
        }
        Ok(Expr::Matrix(rows))
    }
}

fn is_structural(c: &str) -> bool {
    matches!(
        c,
        "end"
            | "begin"
            | "frac"
            | "sqrt"
            | "left"
            | "right"
            | "cdots"
            | "ldots"
            | "dots"
            | "vdots"
            | "ddots"
            | "quad"
    )
}

/// A function command servebench reads (`\\sin`, `\\arctan`, …).
pub(super) fn func_name_known(name: &str) -> bool {
    func_by_name(name).is_some()
}

fn func_by_name(name: &str) -> Option<Func> {
    Some(match name {
        "sin" => Func::Sin,
        "cos" => Func::Cos,
        "tan" => Func::Tan,
        "cot" => Func::Cot,
        "sec" => Func::Sec,
        "csc" => Func::Csc,
        "arcsin" => Func::Asin,
        "arccos" => Func::Acos,
        "arctan" => Func::Atan,
        "sinh" => Func::Sinh,
        "cosh" => Func::Cosh,
        "tanh" => Func::Tanh,
        "ln" => Func::Ln,
        "log" => Func::Log,
        "exp" => Func::Exp,
        "abs" => Func::Abs,
        _ => return None,
    })
}

fn inverse(f: Func) -> Option<Func> {
    match f {
        Func::Sin => Some(Func::Asin),
        Func::Cos => Some(Func::Acos),
        Func::Tan => Some(Func::Atan),
        _ => None,
    }
}

fn first_arg(call: &Expr) -> Expr {
    match call {
        Expr::Call(_, args) => args.last().cloned().unwrap_or(Expr::Int(BigInt::zero())),
        other => other.clone(),
    }
}

/// A one-argument call; `Log` gets base 10.
fn call1(f: Func, arg: Expr) -> Expr {
    match f {
        Func::Log => Expr::Call(Func::Log, vec![int(10), arg]),
        _ => Expr::Call(f, vec![arg]),
    }
}
