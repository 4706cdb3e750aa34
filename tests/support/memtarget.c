/* Memory-acquisition test target: static, no libc beyond what -static links.
 *
 *   memtarget MARKER SECRET HEARTBEAT_PATH   ("-": standard output)
 *
 * Keeps MARKER in a heap buffer reached through the global `marker_ptr`, and
 * SECRET in an anonymous mmap'd region reached through `secret_ptr`; touches
 * `TOUCH_MB` (env, default 0) MiB of anonymous memory; reserves 1 GiB read-write
 * through `sparse_ptr` and touches one page in its middle; then writes a heartbeat
 * line (CLOCK_MONOTONIC ns) every 10 ms to the path given (outside the target,
 * e.g. standard output inherited from the host) forever.
 *   memtarget --memfd MARKER : re-executes itself from a memfd holding its own
 *   image and keeps MARKER in the heap (a fileless process).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

char *marker_ptr;
char *secret_ptr;
char *sparse_ptr; /* 1 GiB reserved read-write, one page touched in its middle */
volatile unsigned long touched_sum;

static long long mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int memfd_exec(char **argv) {
    int src = open("/proc/self/exe", O_RDONLY);
    int mfd = (int)syscall(SYS_memfd_create, "memtarget", 0);
    char buf[65536];
    ssize_t n;
    if (src < 0 || mfd < 0) return 1;
    while ((n = read(src, buf, sizeof buf)) > 0)
        if (write(mfd, buf, (size_t)n) != n) return 1;
    close(src);
    char *args[] = {"memtarget-memfd", argv[2], argv[3], argv[4], NULL};
    char *env[] = {NULL};
    syscall(SYS_execveat, mfd, "", args, env, 0x1000 /* AT_EMPTY_PATH */);
    return 1;
}

int main(int argc, char **argv) {
    if (argc >= 5 && strcmp(argv[1], "--memfd") == 0) return memfd_exec(argv);
    if (argc < 4) {
        fputs("usage: memtarget MARKER SECRET HEARTBEAT_PATH\n", stderr);
        return 2;
    }
    marker_ptr = malloc(strlen(argv[1]) + 64);
    strcpy(marker_ptr, argv[1]);
    secret_ptr = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (secret_ptr == MAP_FAILED) return 1;
    strcpy(secret_ptr + 12345, argv[2]);
    sparse_ptr = mmap(NULL, 1UL << 30, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (sparse_ptr == MAP_FAILED) return 1;
    strcpy(sparse_ptr + (512UL << 20), "SPARSE-");
    strcat(sparse_ptr + (512UL << 20), argv[1]);
    const char *mb = getenv("TOUCH_MB");
    size_t touch = mb ? (size_t)strtoul(mb, NULL, 10) << 20 : 0;
    if (touch) {
        unsigned char *big = mmap(NULL, touch, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (big == MAP_FAILED) return 1;
        for (size_t i = 0; i < touch; i += 64) big[i] = (unsigned char)(i * 2654435761u >> 24);
        touched_sum = big[touch - 64];
    }
    /* argv is clobbered? no: the strings stay in the stack; wipe them so the
     * marker is only found where the test expects it */
    memset(argv[1], 'x', strlen(argv[1]));
    memset(argv[2], 'y', strlen(argv[2]));
    int hb = strcmp(argv[3], "-") == 0 ? 1 : open(argv[3], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    printf("ready %d\n", getpid());
    fflush(stdout);
    for (;;) {
        if (hb >= 0) {
            char line[32];
            int n = snprintf(line, sizeof line, "%lld\n", mono_ns());
            if (write(hb, line, (size_t)n) < 0) return 1;
        }
        struct timespec d = {0, 10 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
}
