/* sysprobe: what the runtime tests cannot ask busybox for.
 *   sysprobe syscall NR     raw syscall NR with zero arguments: prints "ok" or "errno N"
 *   sysprobe open PATH r|w  open(2) for reading or writing: prints "ok" or "errno N"
 *   sysprobe fds            the open descriptors above 2 that are not close-on-exec
 *   sysprobe deny-close-range CMD ARGS...
 *                           runs CMD under a seccomp filter that refuses close_range with
 *                           EPERM (as a sandbox around the runtime might), with a descriptor
 *                           left open (not close-on-exec) for it to keep from the container
 * Built statically by the tests (gcc -static) so it runs in a busybox rootfs. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>

static int report(long r) {
    if (r < 0) {
        printf("errno %d\n", errno);
        return 0;
    }
    printf("ok\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "syscall") == 0) {
        long nr = strtol(argv[2], NULL, 10);
        return report(syscall(nr, 0, 0, 0, 0, 0, 0));
    }
    if (argc == 4 && strcmp(argv[1], "open") == 0) {
        int fd = open(argv[2], argv[3][0] == 'w' ? O_WRONLY : O_RDONLY);
        return report(fd);
    }
    if (argc == 2 && strcmp(argv[1], "fds") == 0) {
        for (int fd = 3; fd < 1024; fd++) {
            int flags = fcntl(fd, F_GETFD);
            if (flags >= 0 && !(flags & FD_CLOEXEC))
                printf("%d\n", fd);
        }
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "deny-close-range") == 0) {
        struct sock_filter prog[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 4),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 436 /* close_range */, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 1 /* EPERM */),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog fprog = {sizeof(prog) / sizeof(prog[0]), prog};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) {
            perror("seccomp");
            return 1;
        }
        if (open("/dev/null", O_RDONLY) < 0) {
            perror("open");
            return 1;
        }
        execvp(argv[2], argv + 2);
        perror("execvp");
        return 127;
    }
    fprintf(stderr, "usage: sysprobe syscall NR | open PATH r|w | fds\n");
    return 2;
}
