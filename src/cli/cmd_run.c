/* cmd_run: placeholder until the run command lands. */
#include "cli/cli.h"
#include <stdio.h>
int cmd_run(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "gad run: not implemented yet\n");
    return 1;
}
