//! The device allow/deny list: checked once, written to v1's devices.allow/devices.deny, or
//! replayed through a model of the v1 kernel's rules to get the state a v2 eBPF program must
//! enforce. Both versions thus give a rule list the same meaning.

use std::fmt;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::{files, CgroupError};

/// Access bits, numbered as both the v1 kernel and `struct bpf_cgroup_dev_ctx` number them.
pub(super) const ACCESS_MKNOD: u8 = 1;
pub(super) const ACCESS_READ: u8 = 2;
pub(super) const ACCESS_WRITE: u8 = 4;
pub(super) const ACCESS_ALL: u8 = ACCESS_MKNOD | ACCESS_READ | ACCESS_WRITE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DeviceKind {
    /// Every device, regardless of numbers ("a" in v1).
    All,
    Char,
    Block,
}

/// One checked rule from linux.resources.devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DeviceRule {
    pub(super) allow: bool,
    pub(super) kind: DeviceKind,
    /// None is the wildcard "*".
    pub(super) major: Option<u32>,
    pub(super) minor: Option<u32>,
    pub(super) access: u8,
}

/// What a v1 devices cgroup holds after a series of writes: a default, and exceptions to it
/// (each granting when the default denies, denying when it allows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DeviceState {
    pub(super) default_allow: bool,
    pub(super) exceptions: Vec<Exception>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Exception {
    /// Char or Block only.
    pub(super) kind: DeviceKind,
    pub(super) major: Option<u32>,
    pub(super) minor: Option<u32>,
    pub(super) access: u8,
}

/// Checks the spec's rules and turns them into the kernel's vocabulary. FIFO rules are
/// dropped: the device cgroup does not govern FIFOs, and v1 refuses the "p" type.
pub(super) fn normalize(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, CgroupError> {
    let mut out = Vec::with_capacity(rules.len());
    for rule in rules {
        let kind = match rule.typ().unwrap_or_default() {
            LinuxDeviceType::A => DeviceKind::All,
            LinuxDeviceType::C | LinuxDeviceType::U => DeviceKind::Char,
            LinuxDeviceType::B => DeviceKind::Block,
            LinuxDeviceType::P => continue,
        };
        let major = device_number(rule, rule.major())?;
        let minor = device_number(rule, rule.minor())?;
        let access = parse_access(rule)?;
        if kind == DeviceKind::All && (major.is_some() || minor.is_some() || access != ACCESS_ALL) {
            // v1 reads any "a ..." as "all devices, all access" and would silently widen or
            // narrow what the rule says.
            return Err(invalid_rule(
                rule,
                "a rule of type \"a\" must cover every device (no major/minor) with access \"rwm\"",
            ));
        }
        out.push(DeviceRule {
            allow: rule.allow(),
            kind,
            major,
            minor,
            access,
        });
    }
    Ok(out)
}

/// Writes the rules in order to devices.allow / devices.deny. A list that begins with
/// "deny all" thus starts from an empty allow list; later rules punch holes in it.
pub(super) fn write_v1(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    for rule in rules {
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        files::write_fmt(dir, file, format_args!("{rule}"))?;
    }
    Ok(())
}

/// Replays the rules the way the v1 kernel applies writes (security/device_cgroup.c), from
/// the state a new v1 cgroup has below an unrestricted parent: allow everything.
pub(super) fn emulate(rules: &[DeviceRule]) -> DeviceState {
    let mut state = DeviceState {
        default_allow: true,
        exceptions: Vec::new(),
    };
    for rule in rules {
        if rule.kind == DeviceKind::All {
            state.default_allow = rule.allow;
            state.exceptions.clear();
            continue;
        }
        let ex = Exception {
            kind: rule.kind,
            major: rule.major,
            minor: rule.minor,
            access: rule.access,
        };
        // A rule agreeing with the default withdraws exceptions (exact matches only, as the
        // kernel does); one disagreeing adds an exception.
        if rule.allow == state.default_allow {
            state.remove(&ex);
        } else {
            state.add(ex);
        }
    }
    state
}

impl DeviceState {
    /// The kernel's verdict for one access (devcgroup_legacy_check_permission); the eBPF
    /// program is tested against it.
    #[cfg(test)]
    pub(super) fn permits(&self, kind: DeviceKind, major: u32, minor: u32, access: u8) -> bool {
        let matches = |ex: &&Exception| {
            ex.kind == kind
                && ex.major.is_none_or(|m| m == major)
                && ex.minor.is_none_or(|m| m == minor)
        };
        if self.default_allow {
            // Denied if any exception covers any of the requested access.
            !self
                .exceptions
                .iter()
                .filter(matches)
                .any(|ex| access & ex.access != 0)
        } else {
            // Allowed only if one exception covers all of it.
            self.exceptions
                .iter()
                .filter(matches)
                .any(|ex| access & !ex.access == 0)
        }
    }

    fn add(&mut self, ex: Exception) {
        match self.exceptions.iter_mut().find(|e| e.same_devices(&ex)) {
            Some(existing) => existing.access |= ex.access,
            None => self.exceptions.push(ex),
        }
    }

    fn remove(&mut self, ex: &Exception) {
        for existing in self.exceptions.iter_mut().filter(|e| e.same_devices(ex)) {
            existing.access &= !ex.access;
        }
        self.exceptions.retain(|e| e.access != 0);
    }
}

impl Exception {
    fn same_devices(&self, other: &Exception) -> bool {
        (self.kind, self.major, self.minor) == (other.kind, other.major, other.minor)
    }
}

/// The v1 kernel syntax: "a", or "c 1:3 rw", "b *:* m".
impl fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            DeviceKind::All => return f.write_str("a"),
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
        };
        write!(f, "{kind} ")?;
        match self.major {
            Some(m) => write!(f, "{m}:")?,
            None => f.write_str("*:")?,
        }
        match self.minor {
            Some(m) => write!(f, "{m} ")?,
            None => f.write_str("* ")?,
        }
        for (bit, letter) in [(ACCESS_READ, 'r'), (ACCESS_WRITE, 'w'), (ACCESS_MKNOD, 'm')] {
            if self.access & bit != 0 {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

/// -1 (or absent) is the wildcard, as in runc.
fn device_number(rule: &LinuxDeviceCgroup, n: Option<i64>) -> Result<Option<u32>, CgroupError> {
    match n {
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n).map(Some).map_err(|_| {
            invalid_rule(
                rule,
                "major and minor must be 0..=4294967295, or -1 for any",
            )
        }),
    }
}

/// Absent or empty access means "rwm", as runc and crun read it. Other letters are ignored as
/// runc ignores them ("rwa" is "rw"), but a rule must keep at least one of r, w and m.
fn parse_access(rule: &LinuxDeviceCgroup) -> Result<u8, CgroupError> {
    let text = rule.access().as_deref().unwrap_or("");
    if text.is_empty() {
        return Ok(ACCESS_ALL);
    }
    let access = text.chars().fold(0, |access, c| {
        access
            | match c {
                'r' => ACCESS_READ,
                'w' => ACCESS_WRITE,
                'm' => ACCESS_MKNOD,
                _ => 0,
            }
    });
    if access == 0 {
        return Err(invalid_rule(
            rule,
            "access must hold at least one of the letters r, w and m",
        ));
    }
    Ok(access)
}

fn invalid_rule(rule: &LinuxDeviceCgroup, reason: &'static str) -> CgroupError {
    CgroupError::InvalidResource {
        resource: "linux.resources.devices rule",
        value: format!("{} {rule}", if rule.allow() { "allow" } else { "deny" }),
        reason,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.
pub(super) mod unit {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    pub(in super::super) fn rule(
        allow: bool,
        typ: LinuxDeviceType,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .access(access);
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().unwrap()
    }

    pub(in super::super) fn deny_all() -> LinuxDeviceCgroup {
        rule(false, LinuxDeviceType::A, None, None, "rwm")
    }

    #[test]
    fn rules_print_in_v1_syntax() {
        let rules = normalize(&[
            deny_all(),
            rule(true, LinuxDeviceType::C, Some(1), Some(3), "rw"),
            rule(true, LinuxDeviceType::B, None, Some(-1), "m"),
            rule(true, LinuxDeviceType::U, Some(136), None, "mwr"),
        ])
        .unwrap();
        let text: Vec<String> = rules.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["a", "c 1:3 rw", "b *:* m", "c 136:* rwm"]);
    }

    #[test]
    fn fifo_rules_are_dropped_and_bad_rules_refused() {
        let fifo = rule(true, LinuxDeviceType::P, Some(1), Some(1), "rw");
        assert!(normalize(&[fifo]).unwrap().is_empty());
        let bad_access = rule(true, LinuxDeviceType::C, Some(1), Some(3), "xa");
        assert!(normalize(&[bad_access]).is_err());
        // runc ignores letters it does not know: "rwa" is "rw".
        let lenient = rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwa");
        assert_eq!(
            normalize(&[lenient]).unwrap()[0].access,
            ACCESS_READ | ACCESS_WRITE
        );
        let partial_all = rule(true, LinuxDeviceType::A, None, None, "r");
        assert!(normalize(&[partial_all]).is_err());
        let all_with_major = rule(false, LinuxDeviceType::A, Some(1), None, "rwm");
        assert!(normalize(&[all_with_major]).is_err());
        let negative = rule(true, LinuxDeviceType::C, Some(-2), Some(3), "rw");
        assert!(normalize(&[negative]).is_err());
    }

    #[test]
    fn emulation_follows_the_v1_kernel() {
        let rules = normalize(&[
            deny_all(),
            rule(true, LinuxDeviceType::C, Some(1), Some(3), "rw"),
            rule(true, LinuxDeviceType::C, Some(1), Some(3), "m"),
            rule(true, LinuxDeviceType::C, Some(136), None, "rwm"),
            // Withdraws part of an exception in deny-by-default mode.
            rule(false, LinuxDeviceType::C, Some(136), None, "m"),
            // Not an exact match of any exception: no effect, as in the kernel.
            rule(false, LinuxDeviceType::C, Some(1), Some(5), "rwm"),
        ])
        .unwrap();
        let state = emulate(&rules);
        assert!(!state.default_allow);
        assert_eq!(state.exceptions.len(), 2);
        assert!(state.permits(DeviceKind::Char, 1, 3, ACCESS_READ | ACCESS_WRITE));
        assert!(state.permits(DeviceKind::Char, 1, 3, ACCESS_MKNOD));
        assert!(state.permits(DeviceKind::Char, 136, 7, ACCESS_READ));
        assert!(!state.permits(DeviceKind::Char, 136, 7, ACCESS_MKNOD));
        assert!(!state.permits(DeviceKind::Char, 1, 5, ACCESS_READ));
        assert!(!state.permits(DeviceKind::Block, 1, 3, ACCESS_READ));

        // Allow-all then deny one: a deny list.
        let rules = normalize(&[
            rule(true, LinuxDeviceType::A, None, None, ""),
            rule(false, LinuxDeviceType::B, Some(8), None, "w"),
        ])
        .unwrap();
        let state = emulate(&rules);
        assert!(state.default_allow);
        assert!(!state.permits(DeviceKind::Block, 8, 1, ACCESS_WRITE));
        // Partial overlap with a deny exception denies the whole request.
        assert!(!state.permits(DeviceKind::Block, 8, 1, ACCESS_READ | ACCESS_WRITE));
        assert!(state.permits(DeviceKind::Block, 8, 1, ACCESS_READ));
        assert!(state.permits(DeviceKind::Char, 8, 1, ACCESS_WRITE));
    }

    #[test]
    fn no_rules_allow_everything() {
        let state = emulate(&[]);
        assert!(state.default_allow && state.exceptions.is_empty());
    }
}
