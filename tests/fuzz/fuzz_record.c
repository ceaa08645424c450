/*
 * tests/fuzz/fuzz_record.c — the recording reader of `vmisim replay` (rec_open_read,
 * sim/record.c) on arbitrary bytes.
 *
 * Proves, for every input: rec_open_read returns (no crash, no sanitizer report, no
 * hang, no leak); it either accepts the file (0, a recording with a scenario name, whose
 * rec_close succeeds) or refuses it with -EINVAL (-ENOMEM allowed) and no recording; a
 * refusal is one line that starts with the file's path ("PATH:LINE: what; expected"),
 * as docs/record-format.md promises.  The bytes reach the reader as a file (a memfd
 * opened through /proc/self/fd), since its entry point takes a path.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "record_internal.h"

static int memfd = -1;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (memfd < 0) {
        memfd = memfd_create("fuzz-record", 0);
        FUZZ_SETUP(memfd);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
    }
    FUZZ_SETUP(ftruncate(memfd, 0));
    size_t off = 0;
    while (off < size) {
        ssize_t n = pwrite(memfd, data + off, size - off, (off_t)off);
        FUZZ_SETUP(n);
        off += (size_t)n;
    }
    char err[1024];
    memset(err, 0, sizeof(err));
    struct rec *c = NULL;
    /* The mode changes nothing of the reading; alternate so both are covered. */
    enum rec_mode mode = size && (data[0] & 1) ? REC_CLIENT : REC_CHECK;
    int rc = rec_open_read(&c, path, mode, err, sizeof(err));
    if (rc == 0) {
        FUZZ_CHECK(c != NULL, "rec_open_read returned 0 without a recording");
        FUZZ_CHECK(rec_scenario(c) != NULL && rec_scenario(c)[0], "an accepted recording names no scenario");
        uint64_t h, sz;
        rec_scenario_hash(c, &h, &sz);
        (void)rec_seed(c);
        FUZZ_CHECK(rec_nr_entries(c) >= 1, "an accepted recording has no entries (not even its verdict)");
        char cerr[256] = "";
        FUZZ_CHECK(rec_close(c, cerr, sizeof(cerr)) == 0, "rec_close of a read recording failed: %s", cerr);
    } else {
        FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM, "rec_open_read returned %d (%s); expected 0, -EINVAL or -ENOMEM",
                   rc, strerror(-rc));
        FUZZ_CHECK(c == NULL, "a recording came back with an error");
        FUZZ_CHECK(memchr(err, 0, sizeof(err)) != NULL, "the message is not NUL-terminated");
        FUZZ_CHECK(strncmp(err, path, strlen(path)) == 0 && err[strlen(path)] == ':',
                   "the message does not start with the path: '%s'", err);
        FUZZ_CHECK(strchr(err, '\n') == NULL, "the message is not one line: '%s'", err);
        FUZZ_CHECK(strlen(err) > strlen(path) + 2, "the message says nothing: '%s'", err);
    }
    return 0;
}
