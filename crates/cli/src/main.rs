//! `postern`, also installed as `sendmail`, `mailq`, `runq` and
//! `newaliases`: see the library for what each name does.
#![forbid(unsafe_code)]

use std::io::Write;

fn main() {
    let status = postern_cli::main(std::env::args_os().collect());
    let _ = std::io::stdout().flush();
    std::process::exit(i32::from(status.code()));
}
