//! sendmail's command line, parsed strictly by hand.
//!
//! sendmail's flags cannot be described to a derive-style parser: values
//! are glued (`-fuser`, `-qRfoo`, `-bp`, `-oi`) or separate (`-f user`),
//! boolean flags cluster (`-ti`), and `-q` takes its argument only when
//! glued. This parser follows getopt's rules for sendmail's option string,
//! stops at the first operand or at `--`, and refuses every flag it does
//! not know: the command line of `sendmail` is an injection surface
//! (PHPMailer, CVE-2016-10033, smuggled `-X` and `-C` inside a sender
//! address), so nothing outside the supported set is silently accepted.

use std::path::PathBuf;

use postern_ipc::{QueueSelector, SelectorField, Sysexit};
use postern_smtp::params::{command_line, BodyType, Notify, Ret};

/// Which tool the binary was started as (the basename of argv[0]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    /// `sendmail`: submit mail, or whatever `-b` says.
    Sendmail,
    /// `mailq` = `sendmail -bp`.
    Mailq,
    /// `runq` = `sendmail -q`.
    Runq,
    /// `newaliases` = `sendmail -bi`.
    Newaliases,
    /// `postern` (and any other name): the administrative subcommands.
    Postern,
}

impl Program {
    /// The tool for a name as it appears in argv[0].
    pub fn from_argv0(argv0: &str) -> Program {
        let base = argv0.rsplit('/').next().unwrap_or(argv0);
        match base {
            "sendmail" => Program::Sendmail,
            "mailq" => Program::Mailq,
            "runq" => Program::Runq,
            "newaliases" => Program::Newaliases,
            _ => Program::Postern,
        }
    }

    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Program::Sendmail => "sendmail",
            Program::Mailq => "mailq",
            Program::Runq => "runq",
            Program::Newaliases => "newaliases",
            Program::Postern => "postern",
        }
    }
}

/// What to do (`-b` and `-q`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `-bm`: read a message from standard input and submit it.
    Deliver,
    /// `-bp`, `mailq`: list the queue.
    PrintQueue,
    /// `-bs`: SMTP on standard input and output.
    Smtp,
    /// `-bv`: how would these addresses be delivered?
    Verify,
    /// `-q`, `runq`: one queue run.
    RunQueue,
    /// `-bi`, `newaliases`.
    NewAliases,
}

/// A parsed sendmail command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// What to do.
    pub mode: Mode,
    /// `-C file` (root only).
    pub config: Option<PathBuf>,
    /// `-f`/`-r`: the envelope sender, brackets removed (`""` is `<>`).
    pub sender: Option<String>,
    /// `-F`: the full name, control characters removed, bounded.
    pub full_name: Option<String>,
    /// `-i`, `-oi`: a line with a single dot does not end the message.
    pub ignore_dots: bool,
    /// `-t`: take recipients from the header too.
    pub extract_recipients: bool,
    /// `-v`.
    pub verbose: bool,
    /// `-q[!]I|R|S<substring>`.
    pub selector: Option<QueueSelector>,
    /// `-N`: every recipient's DSN NOTIFY.
    pub notify: Option<Notify>,
    /// `-R`: DSN RET.
    pub ret: Option<Ret>,
    /// `-V`: DSN ENVID, xtext-decoded.
    pub envid: Option<String>,
    /// `-B`: the body type.
    pub body: Option<BodyType>,
    /// The operands: recipients (`-bm`) or addresses (`-bv`), each
    /// comma-separated list split into its addresses.
    pub addresses: Vec<String>,
}

/// A command line that is refused: print `message` (already complete, with
/// the program name where sendmail gives one) and exit with `exit_code`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError {
    /// The whole line to print on standard error.
    pub message: String,
    /// The exit status (always Sysexit::Usage today).
    pub exit_code: Sysexit,
}

/// sendmail's text for flags only root may use.
pub const NOT_TRUSTED: &str = "Permission denied (real uid not trusted)";

/// Longest `-F` full name kept (it goes into a From: header).
pub const MAX_FULL_NAME: usize = 256;
/// Longest address accepted on the command line (RFC 5321 path limit).
pub const MAX_ADDRESS: usize = 256;

/// Parses sendmail's flags for `program` (`sendmail`, `mailq`, `runq`,
/// `newaliases`); `is_root` is the real uid check for `-C`, `-X`, `-Q` and
/// queue-run intervals.
pub fn parse(program: Program, args: &[String], is_root: bool) -> Result<Options, UsageError> {
    Parser {
        prog: program.name(),
        is_root,
        explicit_mode: None,
        queue_run: false,
        opts: Options {
            mode: match program {
                Program::Mailq => Mode::PrintQueue,
                Program::Runq => Mode::RunQueue,
                Program::Newaliases => Mode::NewAliases,
                Program::Sendmail | Program::Postern => Mode::Deliver,
            },
            config: None,
            sender: None,
            full_name: None,
            ignore_dots: false,
            extract_recipients: false,
            verbose: false,
            selector: None,
            notify: None,
            ret: None,
            envid: None,
            body: None,
            addresses: Vec::new(),
        },
    }
    .run(args)
}

struct Parser {
    prog: &'static str,
    is_root: bool,
    explicit_mode: Option<Mode>,
    queue_run: bool,
    opts: Options,
}

fn usage(message: String) -> UsageError {
    UsageError {
        message,
        exit_code: Sysexit::Usage,
    }
}

/// Flags that take a value (getopt's `x:`): glued or the next argument.
const WITH_VALUE: &[char] = &[
    'A', 'B', 'b', 'C', 'F', 'f', 'N', 'O', 'o', 'R', 'r', 'V', 'X',
];

impl Parser {
    fn run(mut self, args: &[String]) -> Result<Options, UsageError> {
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            i += 1;
            if arg == "--" {
                break;
            }
            let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
                // The first operand ends the flags (POSIX getopt): an
                // address can never turn into a flag.
                i -= 1;
                break;
            };
            for (at, c) in flags.char_indices() {
                let rest = &flags[at + c.len_utf8()..];
                if c == 'q' {
                    // -q's argument exists only when glued.
                    self.queue_flag(rest)?;
                    break;
                }
                if WITH_VALUE.contains(&c) {
                    let value = if !rest.is_empty() {
                        rest.to_string()
                    } else if i < args.len() {
                        i += 1;
                        args[i - 1].clone()
                    } else {
                        return Err(usage(format!(
                            "{}: option requires an argument -- {c}",
                            self.prog
                        )));
                    };
                    self.valued_flag(c, value)?;
                    break;
                }
                self.bool_flag(c)?;
            }
        }
        for operand in &args[i..] {
            self.operand(operand)?;
        }
        self.finish()
    }

    fn unknown(&self, flag: &str) -> UsageError {
        usage(format!("{}: unknown option -{flag}", self.prog))
    }

    fn bool_flag(&mut self, c: char) -> Result<(), UsageError> {
        match c {
            'i' => self.opts.ignore_dots = true,
            't' => self.opts.extract_recipients = true,
            'v' => self.opts.verbose = true,
            // MeToo: always on.
            'm' => {}
            'Q' => return Err(self.root_only("quarantine (-Q) is not supported")),
            other => return Err(self.unknown(&other.to_string())),
        }
        Ok(())
    }

    /// Refused for everyone; non-root callers get sendmail's text.
    fn root_only(&self, root_message: &str) -> UsageError {
        if self.is_root {
            usage(format!("{}: {root_message}", self.prog))
        } else {
            usage(NOT_TRUSTED.to_string())
        }
    }

    fn valued_flag(&mut self, c: char, value: String) -> Result<(), UsageError> {
        match c {
            'b' => self.mode_flag(&value)?,
            'C' => {
                if !self.is_root {
                    return Err(usage(NOT_TRUSTED.to_string()));
                }
                if value.is_empty() {
                    return Err(self.unknown("C"));
                }
                self.opts.config = Some(PathBuf::from(value));
            }
            'f' | 'r' => {
                if self.opts.sender.is_some() {
                    return Err(usage(format!(
                        "{}: More than one \"from\" person",
                        self.prog
                    )));
                }
                let bare = strip_brackets(value.trim());
                if !bare.is_empty() {
                    self.check_address(bare)?;
                }
                self.opts.sender = Some(bare.to_string());
            }
            'F' => self.opts.full_name = Some(clean_full_name(&value)),
            'o' => self.o_option(&value)?,
            'O' => {
                return Err(usage(format!(
                    "{}: -O{value}: options cannot be set on the command line",
                    self.prog
                )))
            }
            'A' => {
                if value != "m" && value != "c" {
                    return Err(usage(format!("{}: -A{value}: use -Am or -Ac", self.prog)));
                }
            }
            // The DSN parameters and the body type, as MAIL FROM and RCPT
            // TO carry them; sendmail's texts for values it refuses.
            'B' => {
                self.check_text(&value)?;
                let body = command_line::body(&value).ok_or_else(|| {
                    usage(format!(
                        "{}: Illegal body type {value} (use 7BIT or 8BITMIME)",
                        self.prog
                    ))
                })?;
                self.opts.body = Some(body);
            }
            'N' => {
                self.check_text(&value)?;
                let notify = command_line::notify(&value).ok_or_else(|| {
                    usage(format!(
                        "{}: Invalid -N argument {value:?} (use never, or a comma-separated \
                         list of success, failure, delay)",
                        self.prog
                    ))
                })?;
                // sendmail adds up several -N flags; `never` is the absence
                // of the others.
                let mut all = self.opts.notify.unwrap_or_default();
                all.success |= notify.success;
                all.failure |= notify.failure;
                all.delay |= notify.delay;
                all.never = !(all.success || all.failure || all.delay);
                self.opts.notify = Some(all);
            }
            'R' => {
                self.check_text(&value)?;
                if self.opts.ret.is_some() {
                    return Err(usage(format!("{}: Duplicate -R flag", self.prog)));
                }
                let ret = command_line::ret(&value).ok_or_else(|| {
                    usage(format!(
                        "{}: Invalid -R value {value:?} (use hdrs or full)",
                        self.prog
                    ))
                })?;
                self.opts.ret = Some(ret);
            }
            'V' => {
                self.check_text(&value)?;
                let envid = command_line::envid(&value).ok_or_else(|| {
                    usage(format!(
                        "{}: Invalid syntax in -V flag (an xtext envelope ID of at most {} characters)",
                        self.prog,
                        postern_smtp::limits::ENVID
                    ))
                })?;
                self.opts.envid = Some(envid);
            }
            'X' => return Err(self.root_only("the traffic log (-X) is not supported")),
            other => return Err(self.unknown(&other.to_string())),
        }
        Ok(())
    }

    fn mode_flag(&mut self, value: &str) -> Result<(), UsageError> {
        let mode = match value {
            "m" => Mode::Deliver,
            "p" => Mode::PrintQueue,
            "s" => Mode::Smtp,
            "v" => Mode::Verify,
            "i" => Mode::NewAliases,
            "d" | "D" => {
                return Err(self.root_only("the daemon is posternd; -bd is not supported here"))
            }
            "H" => return Err(self.root_only("there is no host status to purge (-bH)")),
            other => {
                return Err(usage(format!(
                    "{}: -b{other}: mode not supported",
                    self.prog
                )))
            }
        };
        self.explicit_mode = Some(mode);
        Ok(())
    }

    /// `-o<letter><value>`: only options that cannot change what the tool
    /// talks to or writes. `-oQ` (another queue directory) is the classic
    /// injection and is refused like every other unlisted option.
    fn o_option(&mut self, value: &str) -> Result<(), UsageError> {
        let mut chars = value.chars();
        let letter = chars.next();
        let arg = chars.as_str();
        let ok = match letter {
            Some('i') => match arg {
                "" | "t" | "T" | "true" | "True" | "y" | "Y" => {
                    self.opts.ignore_dots = true;
                    true
                }
                "f" | "F" | "false" | "False" | "n" | "N" => {
                    self.opts.ignore_dots = false;
                    true
                }
                _ => false,
            },
            // ErrorMode: errors are always reported on the terminal.
            Some('e') => matches!(arg, "m" | "e" | "p" | "q" | "w"),
            // DeliveryMode: the daemon always queues first.
            Some('d') => matches!(
                arg,
                "b" | "i" | "q" | "d" | "background" | "interactive" | "queue"
            ),
            // MeToo.
            Some('m') => arg.is_empty(),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(usage(format!(
                "{}: option -o{value} is not supported",
                self.prog
            )))
        }
    }

    fn queue_flag(&mut self, rest: &str) -> Result<(), UsageError> {
        self.queue_run = true;
        if rest.is_empty() || rest == "f" {
            return Ok(());
        }
        let first = rest.chars().next().unwrap_or(' ');
        if first.is_ascii_digit() || first == 'p' {
            return Err(self.root_only(
                "queue run intervals are not supported: posternd schedules its own queue runs",
            ));
        }
        let (negate, spec) = match rest.strip_prefix('!') {
            Some(spec) => (true, spec),
            None => (false, rest),
        };
        let mut chars = spec.chars();
        let field = match chars.next() {
            Some('I') => SelectorField::QueueId,
            Some('R') => SelectorField::Recipient,
            Some('S') => SelectorField::Sender,
            Some('Q') => return Err(self.root_only("quarantine (-qQ) is not supported")),
            Some('G') => {
                return Err(usage(format!(
                    "{}: queue groups (-qG) are not supported",
                    self.prog
                )))
            }
            _ => return Err(self.unknown(&format!("q{rest}"))),
        };
        let substring = chars.as_str();
        if substring.is_empty() {
            return Err(usage(format!("{}: -q{rest} needs a substring", self.prog)));
        }
        self.check_text(substring)?;
        if self.opts.selector.is_some() {
            return Err(usage(format!(
                "{}: only one -qI, -qR or -qS selector is supported",
                self.prog
            )));
        }
        self.opts.selector = Some(QueueSelector {
            field,
            substring: substring.to_string(),
            negate,
        });
        Ok(())
    }

    fn operand(&mut self, operand: &str) -> Result<(), UsageError> {
        // sendmail reads each operand as an address list.
        for address in operand.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let address = strip_brackets(address);
            self.check_address(address)?;
            self.opts.addresses.push(address.to_string());
        }
        Ok(())
    }

    fn check_text(&self, text: &str) -> Result<(), UsageError> {
        if text.chars().any(char::is_control) || text.len() > MAX_ADDRESS {
            return Err(usage(format!(
                "{}: illegal characters or length in argument",
                self.prog
            )));
        }
        Ok(())
    }

    /// No control characters, bounded, and no leading `-` (Postfix's
    /// allow_min_user = no): an address that looks like a flag is an
    /// injection attempt or a mistake.
    fn check_address(&self, address: &str) -> Result<(), UsageError> {
        self.check_text(address)?;
        if address.starts_with('-') {
            return Err(usage(format!(
                "{}: {address}: an address may not begin with \"-\"",
                self.prog
            )));
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Options, UsageError> {
        if let Some(mode) = self.explicit_mode {
            self.opts.mode = mode;
        } else if self.queue_run {
            self.opts.mode = Mode::RunQueue;
        }
        match self.opts.mode {
            Mode::Deliver | Mode::Verify => {}
            // Operands make no sense here; refusing them keeps typos
            // (`mailq user`) from being silently ignored.
            _ if !self.opts.addresses.is_empty() => {
                return Err(usage(format!(
                    "{}: unexpected argument \"{}\"",
                    self.prog, self.opts.addresses[0]
                )))
            }
            _ => {}
        }
        Ok(self.opts)
    }
}

/// `<addr>` → `addr`, `<>` → empty.
fn strip_brackets(address: &str) -> &str {
    address
        .strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .unwrap_or(address)
}

/// The `-F` name as it may go into a header: control characters (CR, LF,
/// NUL, …) become spaces, and it is cut at [`MAX_FULL_NAME`] characters.
pub fn clean_full_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_FULL_NAME)
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests;
