//! Any text into the configuration parser and validator: a config or a list of problems, never a
//! panic; every problem names a reason.
#![no_main]

use kammer::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = Config::from_toml(text, false) {
        assert!(!error.problems.is_empty());
        assert!(error.problems.iter().all(|p| !p.reason.is_empty()));
    }
});
