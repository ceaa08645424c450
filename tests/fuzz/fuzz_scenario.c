/*
 * tests/fuzz/fuzz_scenario.c — the scenario parser (sim/scenario.c) on arbitrary bytes.
 *
 * Proves, for every input: scenario_parse returns (no crash, no sanitizer report, no
 * hang); it either accepts (0, a scenario) or refuses with -EINVAL (-ENOMEM is allowed)
 * and *out NULL; a refusal comes with exactly one line of message that starts with the
 * file name given (the contract of sim/scenario_internal.h, as
 * tests/scenario/test_scenario_parse.c checks it on hand-written inputs); an accepted
 * scenario has a name; scenario_free takes whatever came back.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "scenario_internal.h"

#define NAME "fuzz.yaml"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    memset(err, 0, sizeof(err));
    struct scenario *s = (struct scenario *)&err; /* must be overwritten */
    int rc = scenario_parse((const char *)data, size, NAME, &s, err, sizeof(err));
    if (rc == 0) {
        FUZZ_CHECK(s != NULL, "scenario_parse returned 0 without a scenario");
        FUZZ_CHECK(s->name != NULL && s->name[0], "an accepted scenario has no name");
    } else {
        FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM, "scenario_parse returned %d (%s); expected 0, "
                   "-EINVAL or -ENOMEM", rc, strerror(-rc));
        FUZZ_CHECK(s == NULL, "*out is not NULL after an error (rc %d)", rc);
        FUZZ_CHECK(memchr(err, 0, sizeof(err)) != NULL, "the message is not NUL-terminated");
        FUZZ_CHECK(strncmp(err, NAME ":", strlen(NAME) + 1) == 0,
                   "the message does not start with the file name: '%s'", err);
        FUZZ_CHECK(strchr(err, '\n') == NULL, "the message is not one line: '%s'", err);
        FUZZ_CHECK(strlen(err) > strlen(NAME) + 2, "the message says nothing: '%s'", err);
    }
    scenario_free(s);
    return 0;
}
