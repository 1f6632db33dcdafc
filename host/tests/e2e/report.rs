//! `corral report`: the text report, and the HTML page opened in a real
//! headless Chromium with the network off.

use std::path::{Path, PathBuf};
use std::process::Command;

use corral_tests::guests;

use crate::support::{Fixture, corral};

/// A finished run of 12 iterations on 2 slots; 3 and 7 fail (a guest error
/// and a trap with a panic message carrying markup).
fn finished_run() -> Fixture {
    let fx = Fixture::new(2_000);
    let job = fx.job(
        guests::EVIL,
        &(0..12).collect::<Vec<_>>(),
        "delay_ms = 20\nevil = { \"3\" = \"error\", \"7\" = \"panic\" }",
        "",
    );
    let out = corral(&[&"run", &job]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    fx
}

#[test]
fn the_text_report_shows_the_summary_and_every_failure() {
    let fx = finished_run();
    let out = corral(&[&"report", &fx.out()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("10/12 succeeded, 2 failed"), "{}", out.stdout);
    assert!(out.stdout.contains("failures (2):"), "{}", out.stdout);
    assert!(out.stdout.contains("iteration 3 — guest_error"), "{}", out.stdout);
    assert!(out.stdout.contains("iteration 7 — trap"), "{}", out.stdout);
    assert!(out.stdout.contains("stderr (tail):"), "the panic's stderr: {}", out.stdout);
    assert!(out.stdout.contains("worker slots"), "{}", out.stdout);
    // The manifest file itself works as well as its directory.
    let same = corral(&[&"report", &fx.out().join("_manifest.json")]);
    assert_eq!(same.stdout.replace("/_manifest.json", ""), out.stdout.replace("/_manifest.json", ""));
}

#[test]
fn a_missing_or_malformed_manifest_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = corral(&[&"report", &dir.path()]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.starts_with("error: no manifest at ") && out.stderr.contains("_manifest.json"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);

    let bad = dir.path().join("_manifest.json");
    std::fs::write(&bad, "{\"job\": 3}").unwrap();
    let out = corral(&[&"report", &bad, &"--html", &dir.path().join("r.html")]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("is not a corral manifest"), "{}", out.stderr);
    assert!(!dir.path().join("r.html").exists());
}

/// Debian's Chromium: `.ci/run` installs it; a machine without it fails
/// this test rather than skipping it.
fn chromium() -> PathBuf {
    let path = PathBuf::from("/usr/bin/chromium");
    assert!(path.exists(), "the HTML report test needs Debian's chromium (`apt-get install chromium`; .ci/run installs it)");
    path
}

/// Chromium, headless, with every network request refused.
fn headless(page_url: &str, profile: &Path, extra: &[String]) -> std::process::Output {
    Command::new(chromium())
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(page_url)
        .output()
        .expect("running chromium")
}

#[test]
fn the_html_report_renders_in_a_headless_browser_with_the_network_off() {
    let fx = finished_run();
    let page = fx.dir.path().join("report.html");
    let out = corral(&[&"report", &fx.out(), &"--html", &page]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("src="), "the page loads nothing");

    // The DOM after the page's script ran, sorted by wall time (#sort=wall).
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}#sort=wall", page.display());
    let dumped = headless(&url, profile.path(), &["--dump-dom".into()]);
    let dom = String::from_utf8_lossy(&dumped.stdout);
    assert!(dumped.status.success() && dom.contains("data-ready=\"1\""), "the page's script did not run:\n{}\n{dom}", String::from_utf8_lossy(&dumped.stderr));
    assert!(dom.contains("data-bars=\"12\""), "one bar per iteration, counted in the browser:\n{dom}");
    let bars: Vec<&str> = dom.split("<rect class=\"bar ").skip(1).collect();
    assert_eq!(bars.len(), 12);
    let failed: Vec<&str> = bars.iter().filter(|b| b.starts_with("failed")).copied().collect();
    assert_eq!(failed.len(), 2, "the failed iterations are marked");
    assert!(failed.iter().any(|b| b.contains("data-iteration=\"3\"") && b.contains("data-kind=\"guest_error\"")));
    assert!(failed.iter().any(|b| b.contains("data-iteration=\"7\"") && b.contains("data-kind=\"trap\"")));
    assert!(dom.contains("id=\"failure-7\""), "the trap's section");
    // Sorted by the browser: wall times descending down the table.
    assert!(dom.contains("data-sorted-by=\"wall\""), "{dom}");
    let body = &dom[dom.find("<tbody>").unwrap()..dom.find("</tbody>").unwrap()];
    let walls: Vec<u64> = body
        .split("<tr ")
        .skip(1)
        .map(|row| {
            let cell = row.split("<td data-v=\"").nth(4).unwrap();
            cell[..cell.find('"').unwrap()].parse().unwrap()
        })
        .collect();
    assert_eq!(walls.len(), 12);
    assert!(walls.windows(2).all(|w| w[0] >= w[1]), "sorted by wall time, descending: {walls:?}");

    // A screenshot, for people to look at.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-e2e");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("report.png");
    let _ = std::fs::remove_file(&png);
    let profile = tempfile::tempdir().unwrap();
    let shot = headless(
        &format!("file://{}", page.display()),
        profile.path(),
        &[format!("--screenshot={}", png.display()), "--window-size=1280,1000".into(), "--hide-scrollbars".into()],
    );
    assert!(shot.status.success(), "{}", String::from_utf8_lossy(&shot.stderr));
    let bytes = std::fs::read(&png).expect("the screenshot was written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(bytes.len() > 20_000, "a page with content, not a blank one: {} bytes", bytes.len());
}
