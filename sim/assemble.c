/* sim/assemble.c — guest code through nasm (see assemble_internal.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "assemble_internal.h"

#define ASM_HEADER_LINES 2
#define ASM_CPU_SECONDS 10
#define ASM_MAX_OUTPUT (64u << 20)

static int write_all(const char *path, const char *a, size_t alen, const char *b, size_t blen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    const char *parts[2] = {a, b};
    size_t lens[2] = {alen, blen};
    for (int i = 0; i < 2; i++)
        for (size_t off = 0; off < lens[i];) {
            ssize_t n = write(fd, parts[i] + off, lens[i] - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                int err = n < 0 ? -errno : -EIO;
                close(fd);
                return err;
            }
            off += (size_t)n;
        }
    return close(fd) < 0 ? -errno : 0;
}

/* Reads a whole file (at most `max` bytes) into a malloc'd buffer. */
static int read_all(const char *path, size_t max, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    struct stat st;
    if (fstat(fileno(f), &st) < 0 || (uint64_t)st.st_size > max) {
        fclose(f);
        return -EFBIG;
    }
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

/* Turns nasm's "in.asm:7: error: ..." into "FILE:LINE: nasm: error: ...". */
static void report(const struct asm_source *src, const char *log, char *err, size_t errlen)
{
    const char *line = strstr(log, "error");
    const char *start = line;
    while (start && start > log && start[-1] != '\n')
        start--;
    if (!start) {
        snprintf(err, errlen, "%s:%" PRIu32 ": nasm failed without a message", src->file, src->first_line);
        return;
    }
    unsigned long n = 0;
    const char *colon = strchr(start, ':');
    if (colon)
        n = strtoul(colon + 1, NULL, 10);
    const char *msg = strstr(start, "error");
    size_t len = strcspn(msg, "\n");
    uint32_t file_line = src->first_line;
    if (n > ASM_HEADER_LINES)
        file_line += (uint32_t)(n - ASM_HEADER_LINES - 1);
    snprintf(err, errlen, "%s:%" PRIu32 ": nasm: %.*s", src->file, file_line, (int)len, msg);
}

int asm_nasm(const struct asm_source *src, uint8_t **out, size_t *out_len, char *err, size_t errlen)
{
    const char *tmp = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/vmisim-asm-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        int e = errno;
        snprintf(err, errlen, "cannot create a temporary directory for nasm in %s: %s", dir, strerror(e));
        return -e;
    }
    char in[600], bin[600], log[600];
    snprintf(in, sizeof(in), "%s/guest.asm", dir);
    snprintf(bin, sizeof(bin), "%s/guest.bin", dir);
    snprintf(log, sizeof(log), "%s/nasm.log", dir);
    char header[96];
    int hlen = snprintf(header, sizeof(header), "bits %u\norg 0x%" PRIx64 "\n", src->bits, src->org);
    int rc = write_all(in, header, (size_t)hlen, src->text, src->len);
    if (rc < 0) {
        snprintf(err, errlen, "cannot write the guest source for nasm: %s", strerror(-rc));
        goto out;
    }
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot start nasm: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        struct rlimit cpu = {ASM_CPU_SECONDS, ASM_CPU_SECONDS};
        struct rlimit fsize = {ASM_MAX_OUTPUT, ASM_MAX_OUTPUT};
        setrlimit(RLIMIT_CPU, &cpu);
        setrlimit(RLIMIT_FSIZE, &fsize);
        execlp("nasm", "nasm", "-f", "bin", "-o", bin, in, (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        rc = -ENOENT;
        snprintf(err, errlen, "cannot run nasm: install it (bash .ci/setup does)");
        goto out;
    }
    if (WIFSIGNALED(status)) {
        rc = -E2BIG;
        snprintf(err, errlen, "%s:%" PRIu32 ": nasm was stopped (signal %d): the guest code takes "
                 "more than %d s of CPU or %u MiB of output to assemble", src->file, src->first_line,
                 WTERMSIG(status), ASM_CPU_SECONDS, ASM_MAX_OUTPUT >> 20);
        goto out;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        uint8_t *text = NULL;
        size_t len = 0;
        if (read_all(log, 1u << 20, &text, &len) == 0) {
            report(src, (const char *)text, err, errlen);
            free(text);
        } else {
            snprintf(err, errlen, "%s:%" PRIu32 ": nasm failed", src->file, src->first_line);
        }
        rc = -EINVAL;
        goto out;
    }
    rc = read_all(bin, ASM_MAX_OUTPUT, out, out_len);
    if (rc < 0)
        snprintf(err, errlen, "cannot read nasm's output: %s", strerror(-rc));
out:
    unlink(in);
    unlink(bin);
    unlink(log);
    rmdir(dir);
    return rc;
}
