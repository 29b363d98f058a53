//! A small builder for self-contained HTML pages: inline CSS, charts as inline base64 PNG,
//! no scripts, no external resources.

use base64::Engine as _;

use crate::charts::ChartImage;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// One table cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub text: String,
    pub numeric: bool,
    /// Extra CSS class (`better`, `worse`, `sim`, …).
    pub class: Option<&'static str>,
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Self {
        Cell {
            text: s.into(),
            numeric: false,
            class: None,
        }
    }
    pub fn num(s: impl Into<String>) -> Self {
        Cell {
            text: s.into(),
            numeric: true,
            class: None,
        }
    }
    pub fn with_class(mut self, class: &'static str) -> Self {
        self.class = Some(class);
        self
    }
}

/// A data table; `id` lets tests and readers find it.
pub fn table(id: &str, headers: &[&str], rows: &[Vec<Cell>]) -> String {
    let mut h = format!(
        "<div class=\"table-wrap\"><table class=\"data\" id=\"{}\">\n<thead><tr>",
        escape(id)
    );
    for (i, head) in headers.iter().enumerate() {
        let numeric = !rows.is_empty() && rows.iter().all(|r| r.get(i).is_some_and(|c| c.numeric));
        let class = if numeric { " class=\"num\"" } else { "" };
        h.push_str(&format!("<th scope=\"col\"{class}>{}</th>", escape(head)));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        h.push_str("<tr>");
        for cell in row {
            let mut classes = Vec::new();
            if cell.numeric {
                classes.push("num");
            }
            if let Some(c) = cell.class {
                classes.push(c);
            }
            if classes.is_empty() {
                h.push_str(&format!("<td>{}</td>", escape(&cell.text)));
            } else {
                h.push_str(&format!(
                    "<td class=\"{}\">{}</td>",
                    classes.join(" "),
                    escape(&cell.text)
                ));
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n");
    h
}

/// A chart as an inline PNG with its caption; `rel_dir` is how the caption names the files.
pub fn figure(chart: &ChartImage, rel_dir: &str) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(&chart.png);
    format!(
        "<figure class=\"chart\" id=\"chart-{name}\"><img src=\"data:image/png;base64,{data}\" alt=\"{title}\" width=\"{w}\" height=\"{h}\">\
         <figcaption>{title} <span class=\"files\">{dir}/{name}.svg · {dir}/{name}.png</span></figcaption></figure>\n",
        name = escape(&chart.name),
        title = escape(&chart.title),
        w = chart.width,
        h = chart.height,
        dir = escape(rel_dir),
    )
}

/// A bulleted list of plain-text items.
pub fn list(items: &[String]) -> String {
    let mut h = String::from("<ul class=\"notes\">\n");
    for i in items {
        h.push_str(&format!("<li>{}</li>\n", escape(i)));
    }
    h.push_str("</ul>\n");
    h
}

/// A whole page.
pub struct Page {
    pub title: String,
    /// Plain text under the title.
    pub meta: Vec<String>,
    /// Shown as a warning badge next to the title (e.g. "simulated engine").
    pub badge: Option<String>,
    /// (id, heading, inner HTML).
    pub sections: Vec<(String, String, String)>,
}

const CSS: &str = r#"
:root { --ink:#222b36; --muted:#5f6b7a; --line:#e3e7ec; --bg:#f6f8fa; --accent:#4e79a7; --good:#2f7d32; --bad:#b3261e; --warn:#8a5300; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink); font:15px/1.5 "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; }
header { background:#fff; border-bottom:1px solid var(--line); padding:24px 32px 16px; }
header h1 { margin:0 0 6px; font-size:26px; font-weight:600; display:flex; align-items:center; gap:14px; flex-wrap:wrap; }
.badge { font-size:13px; font-weight:600; color:var(--warn); background:#fff4e0; border:1px solid #f0c987; border-radius:999px; padding:3px 12px; }
.meta { margin:0; color:var(--muted); font-size:14px; }
nav { margin-top:12px; font-size:14px; }
nav a { color:var(--accent); text-decoration:none; margin-right:18px; }
main { max-width:1480px; margin:0 auto; padding:8px 32px 48px; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; margin:24px 0; padding:8px 24px 20px; }
section h2 { font-size:19px; font-weight:600; margin:14px 0 12px; }
p.lead { color:var(--muted); margin:0 0 12px; font-size:14px; }
.table-wrap { overflow-x:auto; }
table.data { border-collapse:collapse; width:100%; font-size:13px; }
table.data th { text-align:left; font-weight:600; color:var(--muted); background:#fafbfc; border-bottom:2px solid var(--line); padding:7px 9px; vertical-align:bottom; }
table.data td { border-bottom:1px solid var(--line); padding:6px 9px; white-space:nowrap; }
table.data tbody tr:nth-child(even) td { background:#fbfcfd; }
table.data tbody tr:hover td { background:#eef3f8; }
table.data td.num, table.data th.num { text-align:right; font-variant-numeric:tabular-nums; }
td.better { color:var(--good); font-weight:600; }
td.worse { color:var(--bad); font-weight:600; }
td.sim { color:var(--warn); }
.charts { display:grid; grid-template-columns:minmax(0, 1200px); gap:24px; }
figure.chart { margin:0; border:1px solid var(--line); border-radius:6px; padding:8px; background:#fff; }
figure.chart img { width:100%; height:auto; display:block; }
figcaption { font-size:13px; color:var(--ink); padding:6px 4px 0; }
figcaption .files { color:var(--muted); margin-left:8px; font-size:12px; }
ul.notes { margin:0; padding-left:20px; color:var(--muted); font-size:13px; }
ul.statements { margin:0 0 14px; padding-left:20px; font-size:15px; }
footer { text-align:center; color:var(--muted); font-size:12px; padding:0 0 32px; }
@media print { body { background:#fff; } section { border:none; } .charts { grid-template-columns:1fr; } }
"#;

impl Page {
    pub fn render(&self) -> String {
        let mut h =
            String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        h.push_str(&format!("<title>{}</title>\n", escape(&self.title)));
        h.push_str(&format!(
            "<style>{CSS}</style>\n</head>\n<body>\n<header>\n"
        ));
        h.push_str(&format!("<h1>{}", escape(&self.title)));
        if let Some(b) = &self.badge {
            h.push_str(&format!(
                " <span class=\"badge\" id=\"simulated-badge\">{}</span>",
                escape(b)
            ));
        }
        h.push_str("</h1>\n");
        for m in &self.meta {
            h.push_str(&format!("<p class=\"meta\">{}</p>\n", escape(m)));
        }
        h.push_str("<nav>");
        for (id, heading, _) in &self.sections {
            h.push_str(&format!(
                "<a href=\"#{}\">{}</a>",
                escape(id),
                escape(heading)
            ));
        }
        h.push_str("</nav>\n</header>\n<main>\n");
        for (id, heading, body) in &self.sections {
            h.push_str(&format!(
                "<section id=\"{}\">\n<h2>{}</h2>\n{body}</section>\n",
                escape(id),
                escape(heading)
            ));
        }
        h.push_str(&format!(
            "</main>\n<footer>servebench {} · self-contained report: no network needed to view it</footer>\n</body>\n</html>\n",
            env!("CARGO_PKG_VERSION")
        ));
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn table_marks_numeric_cells() {
        let t = table(
            "t",
            &["name", "value"],
            &[vec![
                Cell::text("a<b"),
                Cell::num("1.5").with_class("better"),
            ]],
        );
        assert!(t.contains("<table class=\"data\" id=\"t\">"));
        assert!(t.contains("<td>a&lt;b</td><td class=\"num better\">1.5</td>"));
    }

    #[test]
    fn page_has_sections_badge_and_no_external_resources() {
        let p = Page {
            title: "T".into(),
            meta: vec!["m".into()],
            badge: Some("simulated engine".into()),
            sections: vec![("s1".into(), "One".into(), "<p>x</p>".into())],
        }
        .render();
        assert!(p.starts_with("<!DOCTYPE html>"));
        assert!(p.contains("<section id=\"s1\">"));
        assert!(p.contains("simulated engine"));
        assert!(!p.contains("http://") && !p.contains("https://") && !p.contains("<script"));
    }
}
