//! GPQA option text as evalscope cleans it before building the prompt; shared by the eval prompts and the
//! simulator's answer key so both see the same option text.

/// evalscope's option clean-up: trim, ` [title]` → `. `, every `[…]` closed on the same line removed, double
/// spaces made single.
pub fn clean_option(text: &str) -> String {
    let t = text.trim().replace(" [title]", ". ");
    let t = remove_bracketed(&t);
    t.replace("  ", " ")
}

/// Removes each `[…]` that closes on the same line (as Python's `re.sub(r'\[.*?\]', '', s)`).
fn remove_bracketed(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let line_end = after.find('\n').unwrap_or(after.len());
        match after[..line_end].find(']') {
            Some(close) => rest = &after[close + 1..],
            None => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_like_evalscope() {
        assert_eq!(clean_option("  Paris [title] France "), "Paris. France");
        assert_eq!(clean_option("a [ref 3] b"), "a b");
        assert_eq!(clean_option("open [ only"), "open [ only");
    }
}
