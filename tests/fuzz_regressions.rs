//! Replays every committed fuzzing input (fuzz/seeds and fuzz/regressions, one folder per
//! target): each reader must return on each of them, without a panic.

use std::path::Path;

#[test]
fn every_seed_and_regression_input_is_read_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for kind in ["seeds", "regressions"] {
        for target in xmppdns::fuzzing::TARGETS {
            let folder = root.join(kind).join(target);
            let inputs =
                std::fs::read_dir(&folder).unwrap_or_else(|e| panic!("{}: {e}", folder.display()));
            for input in inputs {
                let path = input.unwrap().path();
                if path.file_name().is_some_and(|n| n == ".keep") {
                    continue;
                }
                let data = std::fs::read(&path).unwrap();
                assert!(xmppdns::fuzzing::run(target, &data), "{target}");
                replayed += 1;
            }
        }
    }
    assert!(
        replayed >= xmppdns::fuzzing::TARGETS.len(),
        "{replayed} inputs"
    );
}

#[test]
fn an_unknown_target_is_refused() {
    assert!(!xmppdns::fuzzing::run("nothing", b""));
}
