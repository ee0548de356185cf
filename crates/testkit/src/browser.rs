//! A real browser for the home page: headless Chromium (Debian's `chromium`
//! package; `scripts/apt-tool.sh chromium` installs it) renders a URL, and
//! the test reads the DOM it built. (Turning scripts off would empty the
//! dump, which Chromium takes with a script: a page that must read without
//! JavaScript is checked for having none.) Missing, it fails the test under
//! CI and says SKIPPED elsewhere.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long Chromium may take to render one page.
const RENDER_TIMEOUT: Duration = Duration::from_secs(60);

/// The DOM Chromium builds for `url` (`--dump-dom`); `None` when Chromium
/// is not installed.
pub fn render(url: &str) -> Option<String> {
    let chromium = crate::tool("CHROMIUM_BIN", "chromium")?;
    let dir = tempfile::tempdir().unwrap();
    let (dom, log) = (dir.path().join("dom.html"), dir.path().join("chromium.log"));
    let mut child = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg("--dump-dom")
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&dom).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {chromium}: {e}"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RENDER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not render {url} in {RENDER_TIMEOUT:?}: {}",
                crate::tail(&log)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "chromium: {status}: {}",
        crate::tail(&log)
    );
    Some(std::fs::read_to_string(&dom).unwrap())
}

/// The text a reader sees in `dom`: the tags dropped, the entities HTML
/// escapes with decoded, and each run of whitespace made one space.
pub fn visible_text(dom: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in dom.chars() {
        match (in_tag, c) {
            (false, '<') => in_tag = true,
            (true, '>') => {
                in_tag = false;
                text.push(' ');
            }
            (false, c) => text.push(c),
            (true, _) => {}
        }
    }
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
