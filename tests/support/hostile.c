/*
 * A hostile process for exuvia's hostile-target tests, run inside a shell-less
 * container (built with `gcc -static -O2` by tests/support/hostile.py).
 *
 *   hostile argv TEXT        overwrite its own argv area with TEXT (no NUL kept
 *                            between the old arguments), set its comm to the
 *                            first 15 bytes of TEXT, then sleep
 *   hostile swap DIR N       forever, for each K < N, exchange DIR/K/d (a
 *                            directory) with DIR/K/l (a symlink out of the root)
 *                            and DIR/K/f (a file) with DIR/K/fl (a symlink to a
 *                            host path), atomically with renameat2(RENAME_EXCHANGE)
 *   hostile grow FILE MAX    append 64 KiB every 2 ms to FILE until it is MAX
 *                            bytes, then sleep
 *   hostile churn DIR        forever create then unlink DIR/c0..c999
 *   hostile trace PID        attach to PID with PTRACE_SEIZE (its TracerPid
 *                            becomes this process) and pass every signal on,
 *                            so it runs and stops as if untraced; exits with it
 *
 * It only ever touches paths given to it, and it never exits on its own
 * (except on a usage error, exit 2), so the tests stop it with the container.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static void sleep_forever(void) {
    for (;;) pause();
}

static void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int rewrite_argv(int argc, char **argv, const char *arg) {
    char *text = strdup(arg); /* arg itself lives in the area overwritten below */
    /* the argv strings are contiguous: from argv[0] to the end of argv[argc-1] */
    char *start = argv[0];
    char *end = argv[argc - 1] + strlen(argv[argc - 1]);
    size_t room = (size_t)(end - start); /* keep the final NUL: the kernel needs one */
    size_t n = strlen(text);
    if (n > room) n = room;
    memset(start, ' ', room);
    memcpy(start, text, n);
    char comm[16] = {0};
    strncpy(comm, text, 15);
    prctl(PR_SET_NAME, comm, 0, 0, 0);
    printf("argv rewritten\n");
    fflush(stdout);
    sleep_forever();
    return 0;
}

static int exchange(int dfd, const char *a, const char *b) {
    return (int)syscall(SYS_renameat2, dfd, a, dfd, b, RENAME_EXCHANGE);
}

static int swap_loop(const char *dir, int n) {
    int dfds[256];
    char sub[32];
    if (n < 1 || n > 256) return 2;
    for (int k = 0; k < n; k++) {
        snprintf(sub, sizeof sub, "%d", k);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, sub);
        dfds[k] = open(path, O_RDONLY | O_DIRECTORY);
        if (dfds[k] < 0) {
            perror("open dir");
            return 2;
        }
    }
    for (unsigned long i = 0;; i++) {
        int dfd = dfds[i % (unsigned long)n];
        if (exchange(dfd, "d", "l") != 0 || exchange(dfd, "f", "fl") != 0) {
            perror("renameat2");
            return 2;
        }
        if ((i & 0xff) == 0) sched_yield();
    }
}

static int grow(const char *path, long long max) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0) {
        perror("open");
        return 2;
    }
    static char buf[64 << 10];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)('a' + i % 26);
    long long size = lseek(fd, 0, SEEK_END);
    while (size < max) {
        ssize_t w = write(fd, buf, sizeof buf);
        if (w <= 0) break;
        size += w;
        nap_ms(2);
    }
    sleep_forever();
    return 0;
}

static int churn(const char *dir) {
    char name[4096];
    for (;;) {
        for (int i = 0; i < 1000; i++) {
            snprintf(name, sizeof name, "%s/c%d", dir, i);
            int fd = open(name, O_WRONLY | O_CREAT, 0644);
            if (fd >= 0) {
                (void)!write(fd, name, strlen(name));
                close(fd);
            }
        }
        for (int i = 0; i < 1000; i++) {
            snprintf(name, sizeof name, "%s/c%d", dir, i);
            unlink(name);
        }
        if (access(dir, F_OK) != 0) return 0; /* the directory is gone: stop */
    }
}

static int trace(pid_t pid) {
    if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) != 0) {
        perror("ptrace seize");
        return 2;
    }
    printf("tracing %d\n", (int)pid);
    fflush(stdout);
    for (;;) {
        int st;
        if (waitpid(pid, &st, __WALL) < 0) return 0;
        if (WIFEXITED(st) || WIFSIGNALED(st)) return 0;
        if (WIFSTOPPED(st)) {
            int sig = WSTOPSIG(st);
            /* a group-stop (SIGSTOP & co. under SEIZE) is listened to, not resumed */
            if ((st >> 16) == PTRACE_EVENT_STOP) ptrace(PTRACE_LISTEN, pid, NULL, NULL);
            else ptrace(PTRACE_CONT, pid, NULL, (void *)(long)(sig == SIGTRAP ? 0 : sig));
        }
    }
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "argv") == 0) return rewrite_argv(argc, argv, argv[2]);
    if (argc >= 4 && strcmp(argv[1], "swap") == 0) return swap_loop(argv[2], atoi(argv[3]));
    if (argc >= 4 && strcmp(argv[1], "grow") == 0) return grow(argv[2], atoll(argv[3]));
    if (argc >= 3 && strcmp(argv[1], "churn") == 0) return churn(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "trace") == 0) return trace((pid_t)atoi(argv[2]));
    fprintf(stderr, "usage: hostile argv TEXT | swap DIR N | grow FILE MAX | churn DIR | "
                    "trace PID\n");
    return 2;
}
