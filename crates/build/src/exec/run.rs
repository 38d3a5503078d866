//! RUN: a real container over an overlay of the state's layers and a fresh upper dir, made
//! by the runtime library in the sandbox process; its output streams to the user; its upper
//! dir becomes the step's layer.
//!
//! The runtime creates the mount points the spec needs (/proc, /etc/hosts, …) in the rootfs
//! when the image lacks them; those would land in the layer. So the ones missing before the
//! RUN are removed from the upper dir after it, when still empty (Docker keeps them out of
//! its layers with an "init layer" for the same reason).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::{json, Value};

use super::key::Key;
use super::stage::StageRun;
use super::{random_hex, RunContainer, RunSetup};
use crate::dockerfile::{CmdLine, Instruction, Run};
use crate::error::{Error, Result};
use crate::fsroot::Root;
use crate::sandbox::RunRequest;

/// Where a heredoc script with a `#!` line is mounted in the container.
const SCRIPT_PATH: &str = "/dev/.berth-heredoc";

pub(crate) fn run(s: &mut StageRun<'_, '_>, ins: &Instruction, r: &Run) -> Result<()> {
    let (argv, script) = command(s, r);
    let network = match r.network.as_deref() {
        Some(n) => n.to_string(),
        // A user-defined network's name goes to the host as it is (the daemon checked it).
        None => match s.job.opts.network.as_str() {
            "" | "default" | "bridge" => "default".to_string(),
            n => n.to_string(),
        },
    };
    let mut args: Vec<String> = s.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
    args.sort();
    let created_by = if args.is_empty() {
        format!("RUN {}", argv.join(" "))
    } else {
        format!("RUN |{} {} {}", args.len(), args.join(" "), argv.join(" "))
    };
    let mut key = Key::new(&s.state.config, "RUN").part(&network);
    for a in argv.iter().chain(args.iter()) {
        key = key.part(a);
    }
    if let Some(sc) = &script {
        key = key.part(sc);
    }
    let key = key.finish();
    if let Some(hit) = s.lookup(&key) {
        return s.hit(hit);
    }

    let mut fs = s.mount("run")?;
    let root = Root::open(&fs.rootfs)?;
    let id = random_hex(32);
    let env = s.run_env();
    let cwd = s.workdir();
    let user = s.config.config.user.clone().unwrap_or_default();
    let etc = fs.dir.join("etc");
    crate::private::create_dir(&etc)?;
    let (run_argv, script_file) = match &script {
        Some(body) => {
            let f = fs.dir.join("heredoc-script");
            // Bound into the container, run by whatever user the step has.
            crate::private::write_file(&f, body.as_bytes(), 0o755)?;
            (vec![SCRIPT_PATH.to_string()], Some(f))
        }
        None => (argv.clone(), None),
    };
    // `hold` keeps what the host set up for the container (its network) until the
    // container is gone, whatever way the step ends.
    let RunSetup { mut spec, hold } = s
        .job
        .host
        .run_spec(&RunContainer {
            id: &id,
            rootfs: &fs.rootfs,
            args: &run_argv,
            env: &env,
            cwd: &cwd,
            user: &user,
            network: &network,
            hostname: &id[..12],
            extra_hosts: &s.job.opts.extra_hosts,
            dir: &etc,
        })
        .map_err(|e| s.invalid(format!("RUN: {e}")))?;
    if let Some(f) = &script_file {
        if let Some(m) = spec["mounts"].as_array_mut() {
            m.push(json!({"destination": SCRIPT_PATH, "type": "bind", "source": f, "options": ["rbind", "ro"]}));
        }
    }
    // The working directory is made if missing, as dockerd does.
    root.mkdir_all(&cwd, Default::default())?;
    let missing = missing_mount_points(&root, &spec);
    let bundle = fs.dir.join("bundle");
    crate::private::create_dir(&bundle)?;
    let cfg_path = bundle.join("config.json");
    let bytes = serde_json::to_vec(&spec).map_err(|e| Error::Sandbox(e.to_string()))?;
    // The step's environment (ARGs, ENV) is in it.
    crate::private::write_file(&cfg_path, &bytes, 0o600)?;

    s.say(format!(" ---> Running in {}\n", &id[..12]))?;
    // Per stream (stdout, stderr): the bytes of a UTF-8 character split between chunks.
    let mut pending: [Vec<u8>; 2] = Default::default();
    let out = s.out;
    let code = s.job.sandbox.run(
        &RunRequest {
            id: &id,
            bundle: &bundle,
        },
        &mut |stderr, chunk| {
            // Whole UTF-8 characters only: a chunk may end inside one.
            let pending = &mut pending[usize::from(stderr)];
            pending.extend_from_slice(chunk);
            let valid = match std::str::from_utf8(pending) {
                Ok(_) => pending.len(),
                Err(e) if e.error_len().is_none() => e.valid_up_to(),
                Err(_) => pending.len(),
            };
            let text = String::from_utf8_lossy(&pending[..valid]).into_owned();
            pending.drain(..valid);
            if !text.is_empty() {
                out.say(colour(stderr, text));
            }
        },
        s.job.cancel,
    )?;
    drop(hold);
    for (stderr, rest) in pending.iter().enumerate() {
        if !rest.is_empty() {
            s.say(colour(
                stderr == 1,
                String::from_utf8_lossy(rest).into_owned(),
            ))?;
        }
    }
    fs.unmount()?;
    if code != 0 {
        return Err(Error::RunFailed {
            command: argv.join(" "),
            code,
            step: format!("{}/{}", s.step_number(), s.total_steps()),
            line: ins.line,
        });
    }
    remove_mount_points(&fs.upper, &missing);
    s.say(format!("Removing intermediate container {}\n", &id[..12]))?;
    let upper = fs.upper.clone();
    let cfg = s.config.clone();
    s.commit(&key, cfg, Some(&upper), &created_by)
}

/// A RUN's stderr is shown in bright red, as dockerd's classic builder marks it
/// (`ESC[91m…ESC[0m` around each write): clients and scripts tell the two streams apart so.
fn colour(stderr: bool, text: String) -> String {
    if stderr {
        format!("\x1b[91m{text}\x1b[0m")
    } else {
        text
    }
}

/// The command line to run, and the script of a `RUN <<EOF` whose body starts with `#!`.
fn command(s: &StageRun<'_, '_>, r: &Run) -> (Vec<String>, Option<String>) {
    let CmdLine::Shell(line) = &r.cmd else {
        return (s.argv(&r.cmd), None);
    };
    if r.heredocs.is_empty() {
        return (s.argv(&r.cmd), None);
    }
    // `RUN <<EOF` alone: the body is the script.
    let only = line.trim();
    if r.heredocs.len() == 1 && only.starts_with("<<") && !only.contains(char::is_whitespace) {
        let body = r.heredocs[0].body.clone();
        if body.starts_with("#!") {
            return (vec![SCRIPT_PATH.to_string()], Some(body));
        }
        let mut v = s.shell();
        v.push(body);
        return (v, None);
    }
    // Otherwise the heredocs are the command's input: the shell reads them.
    let mut text = line.clone();
    text.push('\n');
    for h in &r.heredocs {
        text.push_str(&h.body);
        text.push_str(&h.name);
        text.push('\n');
    }
    let mut v = s.shell();
    v.push(text);
    (v, None)
}

/// What the runtime may add to the rootfs for the spec's mounts.
#[derive(Default)]
struct MountPoints {
    /// Mount points the image lacks, with their missing parents: (path, is a directory),
    /// deepest last.
    missing: Vec<(String, bool)>,
    /// Directories that hold a missing mount point and exist: (path, mode, uid, gid). The
    /// runtime's mkdir copies them up into the upper dir.
    parents: Vec<(String, u32, u32, u32)>,
}

/// The spec's mount points that the image lacks.
fn missing_mount_points(root: &Root, spec: &Value) -> MountPoints {
    let mut out = MountPoints::default();
    let Some(mounts) = spec["mounts"].as_array() else {
        return out;
    };
    let dests: Vec<&str> = mounts
        .iter()
        .filter_map(|m| m["destination"].as_str())
        .collect();
    for m in mounts {
        let Some(dest) = m["destination"].as_str() else {
            continue;
        };
        // Under another mount (/dev/pts under /dev): not in the overlay at all.
        if dests
            .iter()
            .any(|d| *d != dest && dest.starts_with(&format!("{}/", d.trim_end_matches('/'))))
        {
            continue;
        }
        let is_file_bind = m["type"] == "bind"
            && m["source"]
                .as_str()
                .is_some_and(|s| std::path::Path::new(s).is_file());
        let mut path = String::new();
        let mut parent: Option<(String, u32, u32, u32)> = None;
        let comps: Vec<&str> = dest.split('/').filter(|c| !c.is_empty()).collect();
        for (i, c) in comps.iter().enumerate() {
            path.push('/');
            path.push_str(c);
            match root.lstat(&path) {
                None => {
                    if let Some(p) = parent.take() {
                        if !out.parents.iter().any(|x| x.0 == p.0) {
                            out.parents.push(p);
                        }
                    }
                    let dir = i + 1 < comps.len() || !is_file_bind;
                    if !out.missing.iter().any(|(p, _)| *p == path) {
                        out.missing.push((path.clone(), dir));
                    }
                }
                Some(st) => {
                    parent = Some((path.clone(), st.st_mode & 0o7777, st.st_uid, st.st_gid));
                }
            }
        }
    }
    out
}

/// Removes from the upper dir the mount points the runtime made, if nothing was put there,
/// and the directories copied up only to hold them.
fn remove_mount_points(upper: &Path, points: &MountPoints) {
    for (p, dir) in points.missing.iter().rev() {
        let host = upper.join(p.trim_start_matches('/'));
        let Ok(m) = std::fs::symlink_metadata(&host) else {
            continue;
        };
        if *dir && m.is_dir() {
            let _ = std::fs::remove_dir(&host);
        } else if !*dir && m.is_file() && m.size() == 0 {
            let _ = std::fs::remove_file(&host);
        }
    }
    let mut parents: Vec<&(String, u32, u32, u32)> = points.parents.iter().collect();
    parents.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
    for (p, mode, uid, gid) in parents {
        let host = upper.join(p.trim_start_matches('/'));
        let Ok(m) = std::fs::symlink_metadata(&host) else {
            continue;
        };
        let untouched = m.is_dir()
            && m.mode() & 0o7777 == *mode
            && m.uid() == *uid
            && m.gid() == *gid
            && std::fs::read_dir(&host).is_ok_and(|mut d| d.next().is_none());
        if untouched {
            let _ = std::fs::remove_dir(&host);
        }
    }
}
