/* sysprobe: what the runtime tests cannot ask busybox for.
 *   sysprobe syscall NR     raw syscall NR with zero arguments: prints "ok" or "errno N"
 *   sysprobe open PATH r|w  open(2) for reading or writing: prints "ok" or "errno N"
 *   sysprobe fds            the open descriptors above 2 that are not close-on-exec
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
    fprintf(stderr, "usage: sysprobe syscall NR | open PATH r|w | fds\n");
    return 2;
}
