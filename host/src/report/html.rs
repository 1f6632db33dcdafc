//! The HTML report: one self-contained page (no network, no external
//! files) with the job's summary, a timeline of the iterations on their
//! worker slots, a sortable table and every failure in full.
//!
//! Everything is rendered here, so the page reads without JavaScript; the
//! one inline script only sorts the table. A Content-Security-Policy allows
//! nothing but the inline style and script, by their sha256, so a hostile
//! string in a manifest (a guest's stderr) can neither run nor load
//! anything, besides being escaped.
//!
//! Every string of the manifest is also made inert ([`text::block`]) before
//! it is HTML-escaped: a `\r`, an ESC or a bidi override in a message is
//! shown as an escape, never raw in the page (where a bidi override would
//! reorder what the reader sees, and a copied line would carry it along).

use std::fmt::Write as _;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::text::bytes;
use crate::guest_input::text;
use crate::manifest::{IterationRecord, Manifest, Status};

/// The page's style.
pub const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d1d1f; }
h1 { font-size: 20px; margin: 0 0 8px; } h2 { font-size: 16px; margin: 24px 0 8px; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; margin: 0; }
dl.summary dt { color: #666; } dl.summary dd { margin: 0; font-family: ui-monospace, monospace; word-break: break-all; }
.totals span { display: inline-block; margin-right: 16px; font-weight: 600; }
.ok { color: #1a7f37; } .bad { color: #cf222e; } .int { color: #bc4c00; }
svg.timeline { border: 1px solid #ddd; background: #fafafa; }
svg.timeline rect.bar { stroke: #fff; stroke-width: 0.5; }
svg.timeline rect.succeeded { fill: #2da44e; } svg.timeline rect.failed { fill: #cf222e; stroke: #82071e; stroke-width: 1.5; }
svg.timeline rect.interrupted { fill: #fb8f44; } svg.timeline rect.carried { fill: #afb8c1; }
svg.timeline text { font-size: 11px; fill: #555; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: right; }
th { cursor: pointer; user-select: none; background: #f6f8fa; position: sticky; top: 0; }
th[aria-sort=descending]::after { content: " \25BC"; } th[aria-sort=ascending]::after { content: " \25B2"; }
td.text, th.text { text-align: left; }
tr.failed td { background: #ffebe9; } tr.interrupted td { background: #fff1e5; }
section.failure { border-left: 4px solid #cf222e; padding: 4px 12px; margin: 8px 0; background: #fff8f7; }
section.failure pre { white-space: pre-wrap; margin: 4px 0; font-size: 12px; }
.legend span { margin-right: 12px; } .legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
.sw-succeeded { background: #2da44e; } .sw-failed { background: #cf222e; } .sw-interrupted { background: #fb8f44; } .sw-carried { background: #afb8c1; }
"#;

/// The page's script: sorts the table by a clicked header (or by
/// `#sort=KEY` in the address), and marks the page ready.
pub const SCRIPT: &str = r#"
(function () {
  var table = document.getElementById("iterations");
  var body = table.tBodies[0];
  function sortBy(key, descending) {
    var th = table.querySelector('th[data-key="' + key + '"]');
    if (!th) return;
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.dataset.type === "num";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
      var c = numeric ? Number(x) - Number(y) : (x < y ? -1 : x > y ? 1 : 0);
      return descending ? -c : c;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    table.dataset.sortedBy = key;
  }
  table.querySelectorAll("th").forEach(function (th) {
    th.addEventListener("click", function () {
      sortBy(th.dataset.key, th.getAttribute("aria-sort") !== "descending");
    });
  });
  var m = /sort=([a-z_]+)/.exec(location.hash);
  if (m) sortBy(m[1], true);
  document.body.dataset.bars = String(document.querySelectorAll("svg.timeline rect.bar").length);
  document.body.dataset.ready = "1";
})();
"#;

/// The CSP source of an inline block: `'sha256-…'` of its exact text.
pub fn csp_hash(block: &str) -> String {
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(block.as_bytes())))
}

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A manifest string for the page: control characters and bidi controls
/// escaped as by [`text::block`] (line breaks and tabs kept, a CRLF taken
/// as a line break), then HTML-escaped, line breaks as `&#10;` so that the
/// page's source has no line that a guest began; not cut (what the
/// manifest holds is bounded when it is written).
fn inert(text: &str) -> String {
    escape(&text::block(&text.replace("\r\n", "\n"), usize::MAX)).replace('\n', "&#10;")
}

fn status_class(r: &IterationRecord) -> &'static str {
    match r.status {
        Status::Succeeded if r.carried_over => "carried",
        Status::Succeeded => "succeeded",
        Status::Failed => "failed",
        Status::Interrupted => "interrupted",
    }
}

/// Renders the whole page.
pub fn render(manifest: &Manifest, location: &str) -> String {
    let job = &manifest.job;
    let s = &manifest.summary;
    let csp = format!("default-src 'none'; style-src {}; script-src {}", csp_hash(STYLE), csp_hash(SCRIPT));
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n<title>corral run {}</title>\n<style>{STYLE}</style></head>\n<body>\n",
        inert(&job.name)
    );
    let _ = writeln!(page, "<h1>corral run <code>{}</code></h1>", inert(&job.name));
    let _ = writeln!(
        page,
        "<p class=\"totals\"><span class=\"ok\">{} succeeded</span><span class=\"bad\">{} failed</span><span class=\"int\">{} interrupted</span><span>{} in all</span><span>{:.2} s</span></p>",
        s.succeeded, s.failed, s.interrupted, s.total, s.wall_ms as f64 / 1000.0
    );
    page.push_str("<dl class=\"summary\">\n");
    let params = serde_json::to_string(&job.params).unwrap_or_default();
    let rows: [(&str, String); 10] = [
        ("manifest", location.to_owned()),
        ("started", job.started.clone()),
        ("finished", job.finished.clone()),
        ("module", job.module.clone()),
        ("module sha256", job.module_sha256.clone()),
        ("config", format!("{} ({} rows)", job.config, job.config_rows)),
        ("params", params),
        ("worker slots", job.concurrency.to_string()),
        ("host peak RSS", bytes(job.peak_rss_bytes)),
        ("corral", job.host_version.clone()),
    ];
    for (term, value) in rows {
        let _ = writeln!(page, "<dt>{term}</dt><dd>{}</dd>", inert(&value));
    }
    page.push_str("</dl>\n");

    page.push_str("<h2>Timeline</h2>\n<p class=\"legend\"><span><i class=\"sw-succeeded\"></i>succeeded</span><span><i class=\"sw-failed\"></i>failed</span><span><i class=\"sw-interrupted\"></i>interrupted</span><span><i class=\"sw-carried\"></i>carried over</span></p>\n");
    timeline(&mut page, manifest);

    page.push_str("<h2>Iterations</h2>\n<p>Click a header to sort.</p>\n");
    table(&mut page, &manifest.iterations);

    let failures: Vec<&IterationRecord> = manifest.iterations.iter().filter(|r| r.status != Status::Succeeded).collect();
    let _ = writeln!(page, "<h2>Failures ({})</h2>", failures.len());
    if failures.is_empty() {
        page.push_str("<p>None.</p>\n");
    }
    for r in failures {
        let (kind, message, stderr) = match &r.error {
            Some(e) => (e.kind.as_str(), e.message.as_str(), e.stderr_tail.as_deref().unwrap_or("")),
            None => ("unknown", "", ""),
        };
        let _ = writeln!(
            page,
            "<section class=\"failure\" id=\"failure-{n}\" data-iteration=\"{n}\" data-kind=\"{kind}\"><strong>iteration {n}: {kind}</strong>\n<pre class=\"message\">{}</pre>",
            inert(message),
            n = r.iteration
        );
        if !stderr.trim().is_empty() {
            let _ = writeln!(page, "<div>stderr (tail):</div><pre class=\"stderr\">{}</pre>", inert(stderr));
        }
        page.push_str("</section>\n");
    }
    let _ = write!(page, "<script>{SCRIPT}</script>\n</body></html>\n");
    page
}

/// Pixels of the timeline's drawing area.
const WIDTH: f64 = 1000.0;
const LANE: f64 = 22.0;
const LEFT: f64 = 70.0;

fn timeline(page: &mut String, manifest: &Manifest) {
    let records = &manifest.iterations;
    let lanes = manifest.job.concurrency.max(records.iter().map(|r| r.worker + 1).max().unwrap_or(1)).max(1);
    let end_ms = records.iter().map(|r| r.offset_ms + r.wall_ms).max().unwrap_or(0).max(manifest.summary.wall_ms).max(1);
    let scale = WIDTH / end_ms as f64;
    let height = LANE * lanes as f64 + 24.0;
    let _ = writeln!(
        page,
        "<svg class=\"timeline\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"iterations on worker slots over time\">",
        LEFT + WIDTH + 10.0
    );
    for lane in 0..lanes {
        let _ = writeln!(page, "<text x=\"4\" y=\"{}\">slot {lane}</text>", LANE * lane as f64 + 15.0);
    }
    for tick in 0..=4 {
        let ms = end_ms as f64 * tick as f64 / 4.0;
        let _ = writeln!(
            page,
            "<text x=\"{:.1}\" y=\"{:.1}\">{:.2}s</text>",
            LEFT + ms * scale - if tick == 4 { 30.0 } else { 0.0 },
            height - 6.0,
            ms / 1000.0
        );
    }
    for r in records {
        let class = status_class(r);
        let x = LEFT + r.offset_ms as f64 * scale;
        let w = (r.wall_ms as f64 * scale).max(1.0);
        let y = LANE * r.worker as f64 + 2.0;
        let kind = r.error.as_ref().map_or("", |e| e.kind.as_str());
        let _ = writeln!(
            page,
            "<rect class=\"bar {class}\" data-iteration=\"{n}\" data-status=\"{class}\" data-kind=\"{kind}\" x=\"{x:.2}\" y=\"{y:.1}\" width=\"{w:.2}\" height=\"{}\"><title>iteration {n}: {class}{}{} · {:.3}s · start {:.3}s · slot {}</title></rect>",
            LANE - 4.0,
            if kind.is_empty() { "" } else { " · " },
            kind,
            r.wall_ms as f64 / 1000.0,
            r.offset_ms as f64 / 1000.0,
            r.worker,
            n = r.iteration,
        );
    }
    page.push_str("</svg>\n");
}

fn table(page: &mut String, records: &[IterationRecord]) {
    let headers: [(&str, &str, bool); 11] = [
        ("iteration", "iteration", true),
        ("status", "status", false),
        ("slot", "worker", true),
        ("start", "offset", true),
        ("wall", "wall", true),
        ("rows in", "rows_in", true),
        ("rows out", "rows_out", true),
        ("bytes out", "bytes_out", true),
        ("fuel", "fuel", true),
        ("peak memory", "memory", true),
        ("error", "error", false),
    ];
    page.push_str("<table id=\"iterations\"><thead><tr>");
    for (label, key, numeric) in headers {
        let _ = write!(
            page,
            "<th data-key=\"{key}\" data-type=\"{}\"{}>{label}</th>",
            if numeric { "num" } else { "text" },
            if numeric { "" } else { " class=\"text\"" }
        );
    }
    page.push_str("</tr></thead>\n<tbody>\n");
    // Failed ones first, as in the terminal summary.
    let mut rows: Vec<&IterationRecord> = records.iter().collect();
    rows.sort_by_key(|r| (r.status == Status::Succeeded, r.iteration));
    for r in rows {
        let class = status_class(r);
        let kind = r.error.as_ref().map_or("", |e| e.kind.as_str());
        let num = |v: u64, shown: String| format!("<td data-v=\"{v}\">{shown}</td>");
        let _ = writeln!(
            page,
            "<tr class=\"{class}\" data-iteration=\"{n}\"><td data-v=\"{n}\">{n}</td><td class=\"text\" data-v=\"{class}\">{class}</td>{}{}{}{}{}{}{}{}<td class=\"text\" data-v=\"{kind}\">{kind}</td></tr>",
            num(r.worker as u64, r.worker.to_string()),
            num(r.offset_ms, format!("{:.3}s", r.offset_ms as f64 / 1000.0)),
            num(r.wall_ms, format!("{:.3}s", r.wall_ms as f64 / 1000.0)),
            num(r.rows_in, r.rows_in.to_string()),
            num(r.rows_out, r.rows_out.to_string()),
            num(r.bytes_out, bytes(r.bytes_out)),
            num(r.fuel_used, r.fuel_used.to_string()),
            num(r.peak_memory_bytes, bytes(r.peak_memory_bytes)),
            n = r.iteration,
        );
    }
    page.push_str("</tbody></table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{ErrorKind, IterationError};

    fn manifest() -> Manifest {
        let error = IterationError {
            kind: ErrorKind::Trap,
            message: "panicked at <script>alert(1)</script>".into(),
            stderr_tail: Some("</pre><img src=x onerror=alert(2)>\"'&".into()),
        };
        crate::manifest::test_manifest("evil <b>job</b>", "</script>", error)
    }

    #[test]
    fn manifest_strings_are_escaped() {
        let page = render(&manifest(), "out/_manifest.json");
        assert!(!page.contains("<script>alert"), "a message's markup must not survive");
        assert!(!page.contains("<img"), "a stderr tail's markup must not survive");
        assert!(!page.contains("<b>job"));
        assert!(page.contains("panicked at &lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("&lt;/pre&gt;&lt;img src=x onerror=alert(2)&gt;&quot;&#39;&amp;"));
        // The page's only script element is ours.
        assert_eq!(page.matches("<script>").count(), 1);
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_style_and_script() {
        let page = render(&manifest(), "m");
        let style = &page[page.find("<style>").unwrap() + 7..page.find("</style>").unwrap()];
        let script = &page[page.find("<script>").unwrap() + 8..page.find("</script>").unwrap()];
        let csp = &page[page.find("content=\"default-src").unwrap()..];
        let csp = &csp[9..csp[9..].find('"').unwrap() + 9];
        assert_eq!(csp, format!("default-src 'none'; style-src {}; script-src {}", csp_hash(style), csp_hash(script)));
        // A known vector: sha256 of "" is 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=.
        assert_eq!(csp_hash(""), "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='");
        assert!(!page.contains("http://") && !page.contains("https://"), "nothing to fetch");
        assert!(!page.contains("style=\""), "inline style attributes are blocked by the policy");
    }

    #[test]
    fn a_hostile_manifest_renders_inert() {
        use crate::guest_input::text::is_raw_control;
        use crate::report::text::tests::{FORGED, hostile};
        let page = render(&hostile(), "out/_manifest.json");
        // Line breaks (the page's own) and tabs are the only controls.
        assert!(!page.chars().any(|c| is_raw_control(c, true)), "{page:?}");
        assert!(!page[page.find("<body>").unwrap()..].contains("\n2026-"), "{page}");
        assert!(page.lines().all(|l| !l.starts_with(FORGED)), "{page}");
        let first = "bad\\rworse \\u{1b}]52;c;aGk=\\u{7} \\u{202e}gnp.exe&#10;";
        let rest = format!("{FORGED}\\u{{2028}}{FORGED}&#10;\t{FORGED}\\u{{1b}}[2J\\u{{9b}}</pre>");
        assert!(page.contains(&format!("<pre class=\"message\">{first}{rest}")), "{page}");
        assert!(page.contains(&format!("<pre class=\"stderr\">{first}{rest}")), "{page}");
        assert!(page.contains(&format!("<title>corral run {first}")), "{page}");
    }

    #[test]
    fn one_bar_per_iteration_on_its_slot() {
        let page = render(&manifest(), "m");
        assert_eq!(page.matches("<rect class=\"bar").count(), 2);
        assert!(page.contains("data-iteration=\"2\" data-status=\"failed\" data-kind=\"trap\""));
    }
}
