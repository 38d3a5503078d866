//! Signal names and numbers, as `runc kill` accepts them: `KILL`, `SIGKILL`, `kill`, `9`, and the
//! real-time signals as `SIGRTMIN+3` or `RTMAX-2`.

/// Why a string does not name a signal.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// Neither a signal name nor a number.
    #[error("unknown signal {0:?}")]
    Unknown(String),
    /// A number, or an offset from SIGRTMIN/SIGRTMAX, outside the signals this system has.
    #[error("signal {input:?} is out of range: signals here are numbered 0 to {max}")]
    OutOfRange { input: String, max: i32 },
}

/// Standard signals; the first entry for a number is its canonical name, later ones are aliases
/// that are only parsed.
const STANDARD: [(&str, i32); 34] = [
    ("SIGHUP", libc::SIGHUP),
    ("SIGINT", libc::SIGINT),
    ("SIGQUIT", libc::SIGQUIT),
    ("SIGILL", libc::SIGILL),
    ("SIGTRAP", libc::SIGTRAP),
    ("SIGABRT", libc::SIGABRT),
    ("SIGBUS", libc::SIGBUS),
    ("SIGFPE", libc::SIGFPE),
    ("SIGKILL", libc::SIGKILL),
    ("SIGUSR1", libc::SIGUSR1),
    ("SIGSEGV", libc::SIGSEGV),
    ("SIGUSR2", libc::SIGUSR2),
    ("SIGPIPE", libc::SIGPIPE),
    ("SIGALRM", libc::SIGALRM),
    ("SIGTERM", libc::SIGTERM),
    ("SIGSTKFLT", libc::SIGSTKFLT),
    ("SIGCHLD", libc::SIGCHLD),
    ("SIGCONT", libc::SIGCONT),
    ("SIGSTOP", libc::SIGSTOP),
    ("SIGTSTP", libc::SIGTSTP),
    ("SIGTTIN", libc::SIGTTIN),
    ("SIGTTOU", libc::SIGTTOU),
    ("SIGURG", libc::SIGURG),
    ("SIGXCPU", libc::SIGXCPU),
    ("SIGXFSZ", libc::SIGXFSZ),
    ("SIGVTALRM", libc::SIGVTALRM),
    ("SIGPROF", libc::SIGPROF),
    ("SIGWINCH", libc::SIGWINCH),
    ("SIGIO", libc::SIGIO),
    ("SIGPWR", libc::SIGPWR),
    ("SIGSYS", libc::SIGSYS),
    ("SIGIOT", libc::SIGIOT),
    ("SIGCLD", libc::SIGCHLD),
    ("SIGPOLL", libc::SIGPOLL),
];

/// Names of the real-time signals counted up from SIGRTMIN and down from SIGRTMAX. Linux has at
/// most 32 of them (32..=64), so offsets 0..=31 cover every libc's SIGRTMIN.
#[rustfmt::skip]
const RTMIN_NAMES: [&str; 32] = [
    "SIGRTMIN", "SIGRTMIN+1", "SIGRTMIN+2", "SIGRTMIN+3", "SIGRTMIN+4", "SIGRTMIN+5",
    "SIGRTMIN+6", "SIGRTMIN+7", "SIGRTMIN+8", "SIGRTMIN+9", "SIGRTMIN+10", "SIGRTMIN+11",
    "SIGRTMIN+12", "SIGRTMIN+13", "SIGRTMIN+14", "SIGRTMIN+15", "SIGRTMIN+16", "SIGRTMIN+17",
    "SIGRTMIN+18", "SIGRTMIN+19", "SIGRTMIN+20", "SIGRTMIN+21", "SIGRTMIN+22", "SIGRTMIN+23",
    "SIGRTMIN+24", "SIGRTMIN+25", "SIGRTMIN+26", "SIGRTMIN+27", "SIGRTMIN+28", "SIGRTMIN+29",
    "SIGRTMIN+30", "SIGRTMIN+31",
];
#[rustfmt::skip]
const RTMAX_NAMES: [&str; 32] = [
    "SIGRTMAX", "SIGRTMAX-1", "SIGRTMAX-2", "SIGRTMAX-3", "SIGRTMAX-4", "SIGRTMAX-5",
    "SIGRTMAX-6", "SIGRTMAX-7", "SIGRTMAX-8", "SIGRTMAX-9", "SIGRTMAX-10", "SIGRTMAX-11",
    "SIGRTMAX-12", "SIGRTMAX-13", "SIGRTMAX-14", "SIGRTMAX-15", "SIGRTMAX-16", "SIGRTMAX-17",
    "SIGRTMAX-18", "SIGRTMAX-19", "SIGRTMAX-20", "SIGRTMAX-21", "SIGRTMAX-22", "SIGRTMAX-23",
    "SIGRTMAX-24", "SIGRTMAX-25", "SIGRTMAX-26", "SIGRTMAX-27", "SIGRTMAX-28", "SIGRTMAX-29",
    "SIGRTMAX-30", "SIGRTMAX-31",
];

/// Parses a signal as runc does: a number (`9`; 0 is kill(2)'s existence check), or a name in
/// any case with or without `SIG` (`KILL`, `SIGKILL`, `kill`), including the real-time signals
/// relative to this libc's SIGRTMIN/SIGRTMAX (`SIGRTMIN`, `SIGRTMIN+3`, `RTMAX-2`).
pub fn parse(s: &str) -> Result<i32, SignalError> {
    let out_of_range = || SignalError::OutOfRange {
        input: s.to_owned(),
        max: libc::SIGRTMAX(),
    };
    if let Ok(number) = s.parse::<i32>() {
        return if (0..=libc::SIGRTMAX()).contains(&number) {
            Ok(number)
        } else {
            Err(out_of_range())
        };
    }
    let bare = strip_prefix_ignore_case(s, "SIG").unwrap_or(s);
    if let Some(&(_, number)) = STANDARD
        .iter()
        .find(|(name, _)| name[3..].eq_ignore_ascii_case(bare))
    {
        return Ok(number);
    }
    let realtime = if let Some(rest) = strip_prefix_ignore_case(bare, "RTMIN") {
        offset(rest, '+').map(|n| n.and_then(|n| libc::SIGRTMIN().checked_add(n)))
    } else if let Some(rest) = strip_prefix_ignore_case(bare, "RTMAX") {
        offset(rest, '-').map(|n| n.and_then(|n| libc::SIGRTMAX().checked_sub(n)))
    } else {
        None
    };
    match realtime {
        Some(Some(number)) if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&number) => Ok(number),
        Some(_) => Err(out_of_range()),
        None => Err(SignalError::Unknown(s.to_owned())),
    }
}

/// The canonical name of a signal (`15` -> `"SIGTERM"`); real-time signals are named from the
/// nearer end, as bash's `kill -l` does (`SIGRTMIN+3`, `SIGRTMAX-2`).
pub fn name(sig: i32) -> Option<&'static str> {
    if let Some(&(name, _)) = STANDARD.iter().find(|&&(_, number)| number == sig) {
        return Some(name);
    }
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    if !(min..=max).contains(&sig) {
        return None;
    }
    let from_min = usize::try_from(sig - min).ok()?;
    let from_max = usize::try_from(max - sig).ok()?;
    if sig - min <= (max - min) / 2 {
        RTMIN_NAMES.get(from_min).copied()
    } else {
        RTMAX_NAMES.get(from_max).copied()
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// What follows `RTMIN`/`RTMAX`: nothing (offset 0) or `sign` and decimal digits. The outer
/// `None` means "not a real-time signal name", the inner one "an offset too large to add".
fn offset(rest: &str, sign: char) -> Option<Option<i32>> {
    if rest.is_empty() {
        return Some(Some(0));
    }
    let digits = rest.strip_prefix(sign)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_in_every_spelling_runc_accepts() {
        for spelling in ["KILL", "SIGKILL", "kill", "sigkill", "SigKill", "9"] {
            assert_eq!(
                parse(spelling).expect(spelling),
                libc::SIGKILL,
                "{spelling}"
            );
        }
        assert_eq!(parse("TERM").expect("TERM"), libc::SIGTERM);
        assert_eq!(parse("hup").expect("hup"), libc::SIGHUP);
        assert_eq!(parse("SIGWINCH").expect("WINCH"), libc::SIGWINCH);
        assert_eq!(parse("0").expect("0"), 0);
    }

    #[test]
    fn parses_aliases_to_their_canonical_signal() {
        assert_eq!(parse("IOT").expect("IOT"), libc::SIGABRT);
        assert_eq!(parse("SIGCLD").expect("CLD"), libc::SIGCHLD);
        assert_eq!(parse("POLL").expect("POLL"), libc::SIGIO);
        assert_eq!(name(libc::SIGABRT), Some("SIGABRT"));
        assert_eq!(name(libc::SIGCHLD), Some("SIGCHLD"));
        assert_eq!(name(libc::SIGIO), Some("SIGIO"));
    }

    #[test]
    fn parses_real_time_signals_relative_to_libc() {
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        assert_eq!(parse("SIGRTMIN").expect("RTMIN"), min);
        assert_eq!(parse("SIGRTMIN+3").expect("RTMIN+3"), min + 3);
        assert_eq!(parse("rtmin+0").expect("rtmin+0"), min);
        assert_eq!(parse("RTMAX").expect("RTMAX"), max);
        assert_eq!(parse("RTMAX-2").expect("RTMAX-2"), max - 2);
        assert_eq!(parse("SIGRTMAX-0").expect("RTMAX-0"), max);
    }

    #[test]
    fn rejects_unknown_names_naming_the_input() {
        for bad in [
            "FOO",
            "",
            "SIG",
            "SIGRTMIN-1",
            "RTMAX+1",
            "RTMIN+",
            "RTMIN+x",
            "RTMIN+-1",
            "KILL ",
            "9x",
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(
                matches!(err, SignalError::Unknown(ref s) if s == bad),
                "{bad}: {err:?}"
            );
        }
        assert_eq!(
            parse("FOO").expect_err("FOO").to_string(),
            "unknown signal \"FOO\""
        );
    }

    #[test]
    fn rejects_numbers_beyond_the_systems_signals() {
        let max = libc::SIGRTMAX();
        for bad in [
            "-1".to_owned(),
            (max + 1).to_string(),
            "SIGRTMIN+40".to_owned(),
            "RTMAX-99999999999".to_owned(),
            "RTMIN+2147483647".to_owned(),
        ] {
            let err = parse(&bad).expect_err(&bad);
            assert!(
                matches!(err, SignalError::OutOfRange { ref input, max: m } if *input == bad && m == max),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn names_every_signal_and_parses_the_name_back() {
        for sig in 1..=libc::SIGRTMAX() {
            let Some(name) = name(sig) else {
                // glibc keeps 32 and 33 for its threads; they have no name.
                assert!(sig < libc::SIGRTMIN(), "{sig} has no name");
                continue;
            };
            assert_eq!(parse(name).expect(name), sig, "{name}");
        }
        assert_eq!(name(libc::SIGTERM), Some("SIGTERM"));
        assert_eq!(name(0), None);
        assert_eq!(name(-1), None);
        assert_eq!(name(libc::SIGRTMAX() + 1), None);
    }

    #[test]
    fn names_real_time_signals_like_bash() {
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        assert_eq!(name(min), Some("SIGRTMIN"));
        assert_eq!(name(min + 1), Some("SIGRTMIN+1"));
        assert_eq!(name(max), Some("SIGRTMAX"));
        assert_eq!(name(max - 1), Some("SIGRTMAX-1"));
        if (min, max) == (34, 64) {
            assert_eq!(name(49), Some("SIGRTMIN+15"));
            assert_eq!(name(50), Some("SIGRTMAX-14"));
        }
    }
}
