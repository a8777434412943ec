//! Test-only pause points for the crash-consistency tests: with `XMPPDNS_FAILPOINT=NAME:N` a
//! debug build stops at the N-th time it reaches point NAME, says so on stderr and waits
//! there forever, so a test can SIGKILL it at exactly that point. Release builds compile
//! every point to nothing: no environment can make a real run stop. The bottom layer:
//! imports nothing from the crate.

/// Marks point `name`; `detail` is printed with the pause (what has happened so far).
#[inline]
pub fn hit(name: &str, detail: impl FnOnce() -> String) {
    #[cfg(debug_assertions)]
    pause_if_asked(name, detail);
    #[cfg(not(debug_assertions))]
    let _ = (name, detail);
}

#[cfg(debug_assertions)]
fn pause_if_asked(name: &str, detail: impl FnOnce() -> String) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static ASKED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static REACHED: AtomicU64 = AtomicU64::new(0);
    let asked = ASKED.get_or_init(|| {
        let spec = std::env::var("XMPPDNS_FAILPOINT").ok()?;
        let (point, nth) = spec.rsplit_once(':')?;
        Some((point.to_string(), nth.parse().ok()?))
    });
    let Some((point, nth)) = asked else { return };
    if point != name || REACHED.fetch_add(1, Ordering::SeqCst) + 1 != *nth {
        return;
    }
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "xmppdns-failpoint: {name} {nth} {}", detail());
    let _ = err.flush();
    drop(err);
    loop {
        std::thread::park();
    }
}
