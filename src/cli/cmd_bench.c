/* cmd_bench: placeholder until the bench command lands. */
#include "cli/cli.h"
#include <stdio.h>
int cmd_bench(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "gad bench: not implemented yet\n");
    return 1;
}
