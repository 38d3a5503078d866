//! Every bad input gets a non-zero exit, a message that names what is wrong, and leaves no
//! state directory, cgroup, mount or process behind.
#![allow(clippy::unwrap_used)]

mod common;

use common::{stderr, Sandbox};
use serde_json::json;

/// Asserts a failed create whose message contains `needle`, and that nothing was left.
fn assert_refused(sb: &Sandbox, needle: &str) {
    let out = sb.create();
    assert!(
        !out.status.success(),
        "create succeeded; expected an error about {needle:?}"
    );
    let err = stderr(&out);
    assert!(
        err.contains(needle),
        "error does not mention {needle:?}: {err}"
    );
    assert!(
        !sb.root.join(&sb.id).exists(),
        "state directory left behind"
    );
    assert!(!sb.cgroup_dir("memory").exists(), "cgroup left behind");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(sb.rootfs().to_str().unwrap()),
        "mount left behind"
    );
}

#[test]
fn missing_config_json() {
    let sb = Sandbox::new(&["true"]);
    std::fs::remove_file(sb.bundle.join("config.json")).unwrap();
    assert_refused(&sb, "config.json");
}

#[test]
fn malformed_config_json_names_line_and_column() {
    let sb = Sandbox::new(&["true"]);
    std::fs::write(
        sb.bundle.join("config.json"),
        "{\n  \"ociVersion\": \"1.0.0\",\n  \"process\": [\n",
    )
    .unwrap();
    assert_refused(&sb, "line");
}

#[test]
fn bundle_without_rootfs() {
    let sb = Sandbox::new(&["true"]);
    std::fs::remove_dir_all(sb.rootfs()).unwrap();
    assert_refused(&sb, "rootfs");
}

#[test]
fn unknown_namespace_type() {
    let mut sb = Sandbox::new(&["true"]);
    sb.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "bogus"}));
    sb.save();
    assert_refused(&sb, "bogus");
}

#[test]
fn namespace_path_that_does_not_exist() {
    let mut sb = Sandbox::new(&["true"]);
    for ns in sb.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" {
            ns["path"] = json!("/proc/999999999/ns/net");
        }
    }
    sb.save();
    assert_refused(&sb, "/proc/999999999/ns/net");
}

#[test]
fn program_not_found_names_it() {
    let sb = Sandbox::new(&["no-such-program"]);
    assert_refused(&sb, "no-such-program");
}

#[test]
fn empty_args() {
    let mut sb = Sandbox::new(&["true"]);
    sb.config["process"]["args"] = json!([]);
    sb.save();
    assert_refused(&sb, "process.args");
}

#[test]
fn hostname_without_uts_namespace() {
    let mut sb = Sandbox::new(&["true"]);
    sb.config["hostname"] = json!("x");
    sb.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "uts");
    sb.save();
    assert_refused(&sb, "uts");
}

#[test]
fn host_sysctl_is_refused() {
    let mut sb = Sandbox::new(&["true"]);
    sb.config["linux"]["sysctl"] = json!({"vm.swappiness": "10"});
    sb.save();
    assert_refused(&sb, "vm.swappiness");
}

#[test]
fn bad_seccomp_action() {
    let mut sb = Sandbox::new(&["true"]);
    sb.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_NONSENSE"});
    sb.save();
    assert_refused(&sb, "SCMP_ACT_NONSENSE");
}

#[test]
fn seccomp_notify_without_a_listener_is_refused() {
    let mut sb = Sandbox::new(&["true"]);
    sb.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]});
    sb.save();
    assert_refused(&sb, "listenerPath");
}

#[test]
fn seccomp_agent_that_does_not_listen_fails_the_create_cleanly() {
    let mut sb = Sandbox::new(&["true"]);
    let path = sb.dir.join("no-agent.sock");
    sb.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": path,
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]});
    sb.save();
    assert_refused(&sb, "no-agent.sock");
}

#[test]
fn terminal_without_console_socket() {
    let mut sb = Sandbox::new(&["true"]);
    sb.config["process"]["terminal"] = json!(true);
    sb.save();
    assert_refused(&sb, "console");
}

#[test]
fn invalid_cpuset_names_the_file() {
    let mut sb = Sandbox::new(&["true"]);
    sb.config["linux"]["resources"] = json!({"cpu": {"cpus": "999"}});
    sb.save();
    assert_refused(&sb, "cpuset.cpus");
}

#[test]
fn id_in_use() {
    let sb = Sandbox::new(&["sleep", "30"]);
    assert!(sb.create().status.success());
    let out = sb.create();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    // The first container is untouched.
    assert_eq!(sb.status(), "created");
}

#[test]
fn malformed_id() {
    let sb = Sandbox::new(&["true"]);
    let bundle = sb.bundle.to_str().unwrap().to_owned();
    for id in ["a/b", "..", "with space"] {
        let out = sb.rt(&["create", "--bundle", &bundle, id]);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("invalid container id"),
            "{id}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn unknown_signal() {
    let sb = Sandbox::new(&["sleep", "30"]);
    assert!(sb.create().status.success());
    let out = sb.rt(&["kill", &sb.id, "SIGNOPE"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("SIGNOPE"), "{}", stderr(&out));
    assert_eq!(sb.status(), "created");
}

#[test]
fn commands_on_a_missing_container() {
    let sb = Sandbox::new(&["true"]);
    for cmd in [
        &["start", "nope-x"][..],
        &["kill", "nope-x"],
        &["state", "nope-x"],
        &["delete", "nope-x"],
        &["pause", "nope-x"],
    ] {
        let out = sb.rt(cmd);
        assert!(!out.status.success(), "{cmd:?}");
        assert!(
            stderr(&out).contains("does not exist"),
            "{cmd:?}: {}",
            stderr(&out)
        );
    }
    // runc: delete --force of a missing container succeeds.
    assert!(sb.rt(&["delete", "--force", "nope-x"]).status.success());
}
