/* sim/vmisim.c — the `vmisim` command line. */
#include <stdio.h>
#include <string.h>

#include "fuzz_client_internal.h"
#include "serve_internal.h"
#include "vmisim.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: vmisim COMMAND [ARGS]\n"
            "\n"
            "commands:\n"
            "  run FILE... run scenario files and check them (see docs/scenario-format.md)\n"
            "              [--json FILE] [--junit FILE] [--quiet] [--trace-hypercalls]\n"
            "              [--seed S] [--record FILE] [--explore N]\n"
            "  replay REC  run a recording again (vmisim run --record) and check that the same\n"
            "              requests happen in the same order [--as-client] [--scenario FILE]\n"
            "  serve FILE  run a scenario's guest as a Xen domain for clients in other processes\n"
            "              (drop-in libxenctrl, docs/xen-clients.md) [--socket PATH] [--domid N]\n"
            "              [--start notify|now] [--start-timeout S] [--exit-when-halted]\n"
            "  fuzz-client fuzz an introspection client: hostile event streams from seeds, failures\n"
            "              minimised into a replayable scenario (docs/fuzzing.md) -- CLIENT [ARGS]\n"
            "  ring-demo   run a simulator and a client process that exchange vm_event\n"
            "              requests and responses over a real Xen shared ring\n"
            "  help        show this text\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "run") == 0)
        return vmisim_run(argc - 1, argv + 1);
    if (strcmp(argv[1], "replay") == 0)
        return vmisim_replay(argc - 1, argv + 1);
    if (strcmp(argv[1], "serve") == 0)
        return vmisim_serve(argc - 1, argv + 1);
    if (strcmp(argv[1], "fuzz-client") == 0)
        return vmisim_fuzz_client(argc - 1, argv + 1);
    if (strcmp(argv[1], "ring-demo") == 0)
        return vmisim_ring_demo(argc - 1, argv + 1);
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "vmisim: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
