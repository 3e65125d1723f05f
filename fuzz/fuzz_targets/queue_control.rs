//! The queue's control file parser (`qf<qid>`, version 1): what the queue
//! runner reads back after a crash, a restart or a hand edit.
//!
//! Input: the file's text (a file that is not UTF-8 is refused before
//! this parser, so the input is skipped).
//!
//! Asserts, beyond "does not panic": a file that parses, written again
//! with `to_text`, parses to the same control file, and writing that
//! gives the same text (one canonical form); an error names a line of
//! the file, or 0 for the file as a whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_queue::ControlFile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let control = match ControlFile::parse(text) {
        Ok(control) => control,
        Err(e) => {
            return assert!(e.line <= text.split('\n').count(), "line {}: {e}", e.line);
        }
    };
    let written = control.to_text();
    let again = ControlFile::parse(&written)
        .unwrap_or_else(|e| panic!("to_text does not parse: {e}\n{written}"));
    assert_eq!(again, control, "{written}");
    assert_eq!(again.to_text(), written);
});
