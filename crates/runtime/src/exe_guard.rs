//! Protection against overwriting the runtime binary from inside a container (the
//! CVE-2019-5736 class). While the init or an exec'd process is still berth, a container process
//! can reach berth's binary through /proc/PID/exe (or exec `#!/proc/self/exe`) and, once berth
//! has moved on, open it for writing. So before forking into a container, berth re-executes
//! itself from a read-only, detached bind mount of its binary: /proc/PID/exe then points into a
//! mount that refuses every write, and no container can reattach or remount it.

use std::ffi::CString;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;

use nix::sys::statvfs::{fstatvfs, FsFlags};

use crate::error::{Error, Result};
use crate::syscall::{self, MountAttr, MOUNT_ATTR_RDONLY, OPEN_TREE_CLONE};

const SEALED_MARK: &str = "_BERTH_EXE_SEALED";

/// Makes sure the running binary cannot be written through /proc/self/exe; re-executes the
/// process from a read-only mount when it could. Returns only when the binary is safe.
/// Call it first thing in commands that put processes into containers.
pub fn ensure_sealed_exe() -> Result<()> {
    let exe =
        std::fs::File::open("/proc/self/exe").map_err(|e| Error::io("open /proc/self/exe", e))?;
    let st = fstatvfs(exe.as_fd()).map_err(|e| Error::sys("statvfs /proc/self/exe", e))?;
    if st.flags().contains(FsFlags::ST_RDONLY) {
        // The mark did its job; hooks and the container must not inherit it.
        if std::env::var_os(SEALED_MARK).is_some() {
            std::env::remove_var(SEALED_MARK);
        }
        return Ok(());
    }
    if std::env::var_os(SEALED_MARK).is_some() {
        return Err(Error::Unsupported(
            "cannot run from a read-only copy of the berth binary: refusing to start containers \
             from a binary they could overwrite"
                .into(),
        ));
    }
    let mnt = syscall::open_tree(libc::AT_FDCWD, c"/proc/self/exe", OPEN_TREE_CLONE)
        .map_err(|e| Error::sys("clone the mount of the berth binary (open_tree)", e))?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    syscall::mount_setattr(mnt.as_fd(), false, &attr)
        .map_err(|e| Error::sys("make the clone of the berth binary read-only", e))?;

    let args: Vec<CString> = std::env::args_os()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let mut env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    env.push(
        CString::new(format!("{SEALED_MARK}=1")).map_err(|_| Error::Unsupported("env".into()))?,
    );
    let errno = match nix::unistd::execveat(
        mnt.as_fd(),
        c"",
        &args,
        &env,
        nix::fcntl::AtFlags::AT_EMPTY_PATH,
    ) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    Err(Error::sys(
        "re-execute berth from its read-only clone",
        errno,
    ))
}
