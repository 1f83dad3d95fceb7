//! The report page in a real browser: headless Chromium loads `index.html` (inside a test page that
//! inspects it once loaded) and the test fails on any console message of the page, on a figure that
//! is missing or has an empty box, and on a summary table without one row per cell.
//!
//! Needs Debian's `chromium`, so these tests are ignored by a plain `cargo test`; `.ci/run` installs
//! Chromium and runs them with `cargo test --release --test browser -- --ignored`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{dmoe, workdir};

/// What the browser saw of a page.
#[derive(Debug)]
struct Inspection {
    /// `(figure id, width, height, visible)` of every figure's SVG.
    figures: Vec<(String, f64, f64, bool)>,
    /// Rows of the summary table's body.
    rows: usize,
    /// `(id, height)` of every step section of a teaching page.
    sections: Vec<(String, f64)>,
    /// Console messages logged by the page itself.
    console: Vec<String>,
}

/// Loads `page` in headless Chromium inside a test page whose script measures every figure's box
/// once the page has loaded, and reads the result from the DOM Chromium dumps.
fn inspect(page: &Path, dir: &Path, fragment: &str) -> Inspection {
    let page = page.canonicalize().unwrap();
    let test_page = dir.join("inspect.html");
    std::fs::write(
        &test_page,
        format!(
            r#"<!DOCTYPE html><html><body>
<iframe id="page" src="file://{}{fragment}" style="width:1200px;height:900px"></iframe>
<script>
document.getElementById('page').addEventListener('load', function () {{
  var d = this.contentDocument;
  var figures = Array.prototype.map.call(d.querySelectorAll('figure'), function (f) {{
    var s = f.querySelector('svg');
    var r = s ? s.getBoundingClientRect() : {{width: 0, height: 0}};
    var cs = s ? d.defaultView.getComputedStyle(s) : null;
    return [f.id, r.width, r.height, !!cs && cs.display !== 'none' && cs.visibility !== 'hidden'];
  }});
  var out = document.createElement('pre');
  out.id = 'inspection';
  var sections = Array.prototype.map.call(d.querySelectorAll('section.step'), function (s) {{
    return [s.id, s.getBoundingClientRect().height];
  }});
  out.textContent = JSON.stringify({{figures: figures, sections: sections,
    rows: d.querySelectorAll('#summary-table tbody tr').length}});
  document.body.appendChild(out);
}});
</script></body></html>"#,
            page.display()
        ),
    )
    .unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", test_page.canonicalize().unwrap().display()))
        .output()
        .expect("chromium runs (apt-get install chromium)");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom.find("<pre id=\"inspection\">").expect("the inspection ran") + "<pre id=\"inspection\">".len();
    let json = &dom[start..start + dom[start..].find("</pre>").unwrap()];
    let v: serde_json::Value = serde_json::from_str(&json.replace("&quot;", "\"").replace("&amp;", "&")).unwrap();
    let figures = v["figures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f[0].as_str().unwrap().to_string(),
                f[1].as_f64().unwrap(),
                f[2].as_f64().unwrap(),
                f[3].as_bool().unwrap(),
            )
        })
        .collect();
    // Chromium logs every console message as `INFO:CONSOLE(...)] "text", source: URL (line)`.
    let page_url = format!("file://{}", page.display());
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE") && l.contains(&page_url))
        .map(String::from)
        .collect();
    let sections = v["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s[0].as_str().unwrap().to_string(), s[1].as_f64().unwrap()))
        .collect();
    Inspection { figures, rows: v["rows"].as_u64().unwrap() as usize, sections, console }
}

/// The figure files of an output folder, as the page's figure ids.
fn figure_ids(out_dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(out_dir.join("plots"))
        .unwrap()
        .filter_map(|e| {
            let p: PathBuf = e.unwrap().path();
            (p.extension()? == "svg").then(|| format!("fig-{}", p.file_stem().unwrap().to_string_lossy()))
        })
        .collect();
    ids.sort();
    ids
}

#[test]
#[ignore = "needs chromium; .ci/run runs it"]
fn the_quickstart_report_renders_every_figure_and_one_row_per_cell() {
    let dir = workdir("browser-quickstart");
    let out_dir = dir.join("q");
    let q = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart.toml");
    let out = dmoe(&[
        "run",
        q.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--quiet",
        "--set",
        "data.n=6000",
        "--set",
        "repetitions=1",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(out_dir.join("index.html")).unwrap();
    for external in ["<script", "<link", "src=\"http", "href=\"http", "url(", "@import"] {
        assert!(!html.contains(external), "the page is not self-contained: it has `{external}`");
    }
    let seen = inspect(&out_dir.join("index.html"), &dir, "");
    assert!(seen.console.is_empty(), "console messages: {:?}", seen.console);
    assert_eq!(seen.rows, 5, "one summary row per cell");
    let mut ids: Vec<String> = seen.figures.iter().map(|f| f.0.clone()).collect();
    ids.sort();
    assert_eq!(ids, figure_ids(&out_dir), "every plot is on the page, once");
    for (id, w, h, visible) in &seen.figures {
        assert!(*visible && *w > 100.0 && *h > 50.0, "{id}: {w} x {h}, visible {visible}");
    }
}

#[test]
#[ignore = "needs chromium; .ci/run runs it"]
fn the_inspection_catches_an_empty_figure_and_a_console_message() {
    let dir = workdir("browser-negative");
    let page = dir.join("index.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><table id=\"summary-table\"><tbody><tr><td>1</td></tr></tbody></table>\
         <figure id=\"fig-a\"><svg width=\"0\" height=\"0\"></svg></figure>\
         <figure id=\"fig-b\" style=\"display:none\"><svg width=\"100\" height=\"100\"></svg></figure>\
         <script>console.log('left over')</script></body></html>",
    )
    .unwrap();
    let seen = inspect(&page, &dir, "");
    assert_eq!(seen.rows, 1);
    assert_eq!(seen.console.len(), 1, "{:?}", seen.console);
    assert_eq!(seen.figures[0], ("fig-a".to_string(), 0.0, 0.0, true));
    assert!(!seen.figures[1].3 || seen.figures[1].1 == 0.0, "a hidden figure has no box: {:?}", seen.figures[1]);
}

#[test]
#[ignore = "needs chromium; .ci/run runs it"]
fn the_teaching_page_shows_one_step_at_a_time() {
    let dir = workdir("browser-teach");
    let out_dir = dir.join("t");
    let out = dmoe(&["teach", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page = out_dir.join("index.html");
    for (fragment, shown) in [("", "step-1"), ("#step-5", "step-5")] {
        let seen = inspect(&page, &dir, fragment);
        assert!(seen.console.is_empty(), "console messages: {:?}", seen.console);
        assert!(seen.sections.len() > 5, "{:?}", seen.sections);
        for (id, height) in &seen.sections {
            assert_eq!(*height > 100.0, id == shown, "{fragment}: {id} has height {height}");
        }
    }
}
