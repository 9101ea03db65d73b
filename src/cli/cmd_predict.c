/* cmd_predict: placeholder until the predict command lands. */
#include "cli/cli.h"
#include <stdio.h>
int cmd_predict(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "gad predict: not implemented yet\n");
    return 1;
}
