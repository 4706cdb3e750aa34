/*
 * tinyinit: the only program in the e2e cluster's pause and shell-less images.
 * Built with `gcc -static`; the images hold nothing else (no shell, no libc).
 *
 *   tinyinit                 (or argv[0] "pause") sleep until SIGTERM/SIGINT,
 *                            reaping children: the pod sandbox (pause) image.
 *   tinyinit log [PREFIX]    print "PREFIX N" on stdout every second until
 *                            SIGTERM/SIGINT: the shell-less workload.
 *   tinyinit echo ARGS...    print ARGS and exit 0: something to exec.
 *   tinyinit cat             copy stdin to stdout until EOF: something to attach.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }
static void on_chld(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }

int main(int argc, char **argv) {
    const char *base = strrchr(argv[0], '/');
    const char *mode = argc > 1 ? argv[1] : "pause";
    base = base ? base + 1 : argv[0];
    if (argc <= 1 && strcmp(base, "pause") != 0) mode = "pause";
    if (strcmp(mode, "echo") == 0) {
        for (int i = 2; i < argc; i++) printf("%s%s", argv[i], i + 1 < argc ? " " : "");
        printf("\n");
        return 0;
    }
    if (strcmp(mode, "cat") == 0) {
        char buf[4096]; ssize_t n;
        while ((n = read(0, buf, sizeof buf)) > 0)
            if (write(1, buf, (size_t)n) != n) return 1;
        return 0;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_chld;
    sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    if (strcmp(mode, "log") == 0) {
        const char *prefix = argc > 2 ? argv[2] : "exuvia shellless tick";
        setvbuf(stdout, NULL, _IOLBF, 0);
        for (unsigned long n = 0; !stop; n++) {
            printf("%s %lu\n", prefix, n);
            sleep(1);
        }
        printf("%s stopping\n", prefix);
        return 0;
    }
    while (!stop) pause();
    return 0;
}
