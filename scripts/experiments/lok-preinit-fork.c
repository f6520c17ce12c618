/*
 * Can LibreOffice 7.4 be preinitialised once and forked into workers?
 *
 * The evidence behind "Worker start-up" in docs/performance.md. The parent
 * dlopens LibreOffice and, with `preinit`, calls `lok_preinit`; it then
 * forks N children at once. Each child takes its own process group and its
 * own profile and calls `libreofficekit_hook_2` (lok_init_2), converts the
 * pool's three warm-up samples to PDF and waits. The parent reports each
 * child's time from fork to ready and to warm, the threads alive after
 * preinit, and every process's PSS once all children are warm.
 * Without `preinit` the children start LibreOffice from nothing, as an
 * exec'd worker does (minus the exec).
 *
 * Whether a profile's settings apply is seen from lock files: a profile
 * that says UseLocking=false leaves no `.~lock.NAME#` beside a loaded
 * document, and each child reports whether it saw one. Preinit reads the
 * configuration from the `UserInstallation` bootstrap variable (here from
 * the environment), not from the URL passed to lok_preinit, and children
 * keep that configuration whatever profile they pass to lok_init_2.
 *
 *   cc -O1 -o /tmp/lok-preinit-fork scripts/experiments/lok-preinit-fork.c -ldl
 *   mkdir -p /tmp/lpf && cp converter/warmup/warm.* /tmp/lpf/
 *   env -i PATH=/usr/bin:/bin LANG=C.UTF-8 SAL_USE_VCLPLUGIN=svp HOME=/tmp/lpf \
 *       UserInstallation=file:///tmp/lpf/policy /tmp/lok-preinit-fork /tmp/lpf 4 preinit
 *
 * with /tmp/lpf/policy/user/registrymodifications.xcu holding the
 * settings; the first run with a new policy profile completes LibreOffice's
 * first start in it (slow), later runs find it done.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct Office Office;
typedef struct Doc Doc;
typedef struct {
    size_t size;
    void (*destroy)(Office *);
    Doc *(*load)(Office *, const char *);
    char *(*get_error)(Office *);
    Doc *(*load_with_options)(Office *, const char *, const char *);
} OfficeClass;
struct Office { OfficeClass *c; };
typedef struct {
    size_t size;
    void (*destroy)(Doc *);
    int (*save_as)(Doc *, const char *, const char *, const char *);
} DocClass;
struct Doc { DocClass *c; };

static const char *PROGRAM = "/usr/lib/libreoffice/program";
static const char *SAMPLES[] = {"warm.docx", "warm.xlsx", "warm.pptx"};

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Threads of this process, and their names when `names`. */
static int threads(int names) {
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            n++;
            if (names) {
                char path[300], name[64] = "";
                snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
                FILE *f = fopen(path, "r");
                if (f && fgets(name, sizeof name, f)) fprintf(stderr, "  thread %s: %s", e->d_name, name);
                if (f) fclose(f);
            }
        }
    closedir(d);
    return n;
}

static long pss_kib(pid_t pid) {
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "Pss:", 4)) kib = atol(line + 4);
    fclose(f);
    return kib;
}

static void child(const char *dir, int i, double forked, Office *(*hook)(const char *, const char *)) {
    char url[512], in[512], out[512], flag[512];
    int locked = 0;
    setpgid(0, 0);
    snprintf(url, sizeof url, "file://%s/profile-%d", dir, i);
    Office *office = hook(PROGRAM, url);
    double ready = now_ms() - forked;
    if (!office) { fprintf(stderr, "child %d: no office\n", i); _exit(1); }
    for (int k = 0; k < 3; k++) {
        snprintf(in, sizeof in, "file://%s/%s", dir, SAMPLES[k]);
        snprintf(out, sizeof out, "file://%s/out-%d-%d.pdf", dir, i, k);
        Doc *doc = office->c->load_with_options(office, in, "Language=en-US,Batch=true");
        if (!doc) { fprintf(stderr, "child %d: %s\n", i, office->c->get_error(office)); _exit(1); }
        snprintf(flag, sizeof flag, "%s/.~lock.%s#", dir, SAMPLES[k]);
        if (!access(flag, F_OK)) locked++;
        if (!doc->c->save_as(doc, out, "pdf", "")) { fprintf(stderr, "child %d: save failed\n", i); _exit(1); }
        doc->c->destroy(doc);
    }
    fprintf(stderr, "child %d: ready %.0f ms, warm %.0f ms, threads %d, lock files seen %d\n", i, ready,
            now_ms() - forked, threads(0), locked);
    snprintf(flag, sizeof flag, "%s/warm-%d", dir, i);
    fclose(fopen(flag, "w"));
    pause();
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s DIR N [preinit]\n", argv[0]); return 2; }
    const char *dir = argv[1];
    int n = atoi(argv[2]), preinit = argc > 3 && !strcmp(argv[3], "preinit");
    pid_t pids[64];
    char path[512];
    if (n < 1 || n > 64) return 2;
    void *lib = dlopen("/usr/lib/libreoffice/program/libmergedlo.so", RTLD_LAZY | RTLD_GLOBAL);
    int (*lok_preinit)(const char *, const char *) = dlsym(lib, "lok_preinit");
    Office *(*hook)(const char *, const char *) = dlsym(lib, "libreofficekit_hook_2");
    double begun = now_ms();
    if (preinit) {
        snprintf(path, sizeof path, "file://%s/profile-preinit", dir);
        int rc = lok_preinit(PROGRAM, path);
        fprintf(stderr, "lok_preinit: rc %d, %.0f ms, threads %d\n", rc, now_ms() - begun, threads(0));
        threads(1);
        /* Forking is only sound with no other thread: wait for them to end. */
        double waited = now_ms();
        while (threads(0) > 1 && now_ms() - waited < 10000) usleep(10000);
        fprintf(stderr, "single-threaded after %.0f ms more (threads %d)\n", now_ms() - waited, threads(0));
    }
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/warm-%d", dir, i);
        unlink(path);
    }
    for (int i = 0; i < n; i++) {
        double forked = now_ms();
        pids[i] = fork();
        if (pids[i] == 0) child(dir, i, forked, hook);
    }
    for (int all = 0; !all;) {
        usleep(50000);
        all = 1;
        for (int i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/warm-%d", dir, i);
            if (access(path, F_OK)) all = 0;
        }
    }
    long total = 0;
    for (int i = 0; i < n; i++) total += pss_kib(pids[i]);
    fprintf(stderr, "all warm after %.0f ms; PSS: parent %ld KiB, children mean %ld KiB\n", now_ms() - begun,
            pss_kib(getpid()), total / n);
    for (int i = 0; i < n; i++) kill(pids[i], SIGKILL);
    while (wait(NULL) > 0) {}
    return 0;
}
