/* sim/vmisim.h — the vmisim program's commands (sim/vmisim.c dispatches them). */
#ifndef VMISIM_VMISIM_H
#define VMISIM_VMISIM_H

/* `vmisim ring-demo`: a simulator and a client process exchange events on a real ring. */
int vmisim_ring_demo(int argc, char **argv);
/* `vmisim run [--json FILE] [--junit FILE] [--quiet] FILE...`: runs scenario files. */
int vmisim_run(int argc, char **argv);
/* `vmisim replay [--as-client] [--scenario FILE] RECORDING`: runs a recording again and compares. */
int vmisim_replay(int argc, char **argv);

#endif
